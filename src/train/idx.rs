//! The IDX format of (Fashion-)MNIST, gzipped or raw.
//!
//! An IDX file is a 4-byte magic number `00 00 08 NDIM` (`08`: unsigned bytes), NDIM
//! big-endian `u32` dimensions, then the data, row-major. Images are `00000803`
//! (count x rows x cols), labels `00000801` (count). The reader checks the magic number
//! and that the file holds exactly the bytes its header promises, so a truncated or
//! corrupt download is reported with the file's name instead of yielding garbage.

use super::DataError;
use std::io::Read;
use std::path::Path;

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Grey images read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Height of every image.
    pub rows: usize,
    /// Width of every image.
    pub cols: usize,
    /// `count * rows * cols` bytes, one image after the other.
    pub pixels: Vec<u8>,
}

/// Reads an images file (`*-images-idx3-ubyte[.gz]`).
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let (dims, data) = read_idx(path, IMAGES_MAGIC, "images")?;
    Ok(IdxImages { count: dims[0], rows: dims[1], cols: dims[2], pixels: data })
}

/// Reads a labels file (`*-labels-idx1-ubyte[.gz]`).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(read_idx(path, LABELS_MAGIC, "labels")?.1)
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes.
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing { path: path.to_path_buf() }
        } else {
            DataError::Read { path: path.to_path_buf(), source }
        }
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 2);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip { path: path.to_path_buf(), source })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX file of unsigned bytes whose magic number must be `magic`; returns its
/// dimensions and data.
fn read_idx(path: &Path, magic: u32, kind: &'static str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bytes = read_bytes(path)?;
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 4 {
        return Err(DataError::Truncated { path: path.to_path_buf(), expected: header as u64, found: bytes.len() as u64 });
    }
    let found = word(0);
    if found != magic {
        return Err(DataError::BadMagic { path: path.to_path_buf(), kind, found, expected: magic });
    }
    if bytes.len() < header {
        return Err(DataError::Truncated { path: path.to_path_buf(), expected: header as u64, found: bytes.len() as u64 });
    }
    let dims: Vec<usize> = (0..ndim).map(|d| word(4 + 4 * d) as usize).collect();
    // u32 dimensions multiplied in u128 cannot overflow for ndim <= 3.
    let expected = header as u128 + dims.iter().map(|&d| d as u128).product::<u128>();
    let found = bytes.len() as u128;
    if found < expected {
        return Err(DataError::Truncated { path: path.to_path_buf(), expected: expected as u64, found: found as u64 });
    }
    if found > expected {
        return Err(DataError::TrailingBytes { path: path.to_path_buf(), extra: (found - expected) as u64 });
    }
    let mut data = bytes;
    data.drain(..header);
    Ok((dims, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("resnetc-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzipped() {
        let bytes = idx(IMAGES_MAGIC, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let raw = read_images(&temp("a-images", &bytes)).unwrap();
        assert_eq!((raw.count, raw.rows, raw.cols), (2, 2, 3));
        assert_eq!(raw.pixels[11], 12);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let gzipped = read_images(&temp("a-images.gz", &gz.finish().unwrap())).unwrap();
        assert_eq!(raw, gzipped);
        let labels = read_labels(&temp("a-labels", &idx(LABELS_MAGIC, &[3], &[0, 9, 4]))).unwrap();
        assert_eq!(labels, vec![0, 9, 4]);
    }

    #[test]
    fn reports_bad_files() {
        let missing = read_labels(Path::new("/nonexistent/t10k-labels-idx1-ubyte")).unwrap_err();
        assert!(matches!(missing, DataError::Missing { .. }), "{missing}");
        let magic = read_labels(&temp("b-labels", &idx(IMAGES_MAGIC, &[1, 1, 1], &[0]))).unwrap_err();
        assert!(magic.to_string().contains("magic number 0x00000803, expected 0x00000801"), "{magic}");
        let short = read_images(&temp("c-images", &idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 7]))).unwrap_err();
        assert!(short.to_string().contains("truncated"), "{short}");
        assert!(short.to_string().contains("c-images"), "{short}");
        let long = read_labels(&temp("d-labels", &idx(LABELS_MAGIC, &[1], &[0, 1]))).unwrap_err();
        assert!(matches!(long, DataError::TrailingBytes { extra: 1, .. }), "{long}");
        let tiny = read_labels(&temp("e-labels", &[0, 0])).unwrap_err();
        assert!(matches!(tiny, DataError::Truncated { .. }), "{tiny}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(LABELS_MAGIC, &[100], &[1; 100])).unwrap();
        let gz = gz.finish().unwrap();
        let cut = read_labels(&temp("f-labels.gz", &gz[..gz.len() / 2])).unwrap_err();
        assert!(matches!(cut, DataError::Gzip { .. }), "{cut}");
    }
}
