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
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: data,
    })
}

/// Reads a labels file (`*-labels-idx1-ubyte[.gz]`).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(read_idx(path, LABELS_MAGIC, "labels")?.1)
}

/// The most data bytes an IDX file may declare: 4 GiB (MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Reads an IDX file of unsigned bytes whose magic number must be `magic`; returns its
/// dimensions and data. The header is read and checked first (magic number, dimensions,
/// the data's size against [`MAX_IDX_BYTES`] and, uncompressed, against the file's
/// length), so no memory is set aside for data the file does not hold; a gzipped file is
/// decompressed as a stream and never beyond the size its header declares plus one byte.
fn read_idx(
    path: &Path,
    magic: u32,
    kind: &'static str,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let (file, file_len) = crate::files::open_regular(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let read_err = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let gzip_err = |source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(file);
    let gzipped = std::io::BufRead::fill_buf(&mut file)
        .map_err(read_err)?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let on_read = |e| if gzipped { gzip_err(e) } else { read_err(e) };

    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    let mut head = Vec::with_capacity(header);
    (&mut reader)
        .take(header as u64)
        .read_to_end(&mut head)
        .map_err(on_read)?;
    let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    if head.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            found: head.len() as u64,
        });
    }
    let found = word(0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            kind,
            found,
            expected: magic,
        });
    }
    if head.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            found: head.len() as u64,
        });
    }
    let dims: Vec<usize> = (0..ndim).map(|d| word(4 + 4 * d) as usize).collect();
    let bad_header = |message: String| DataError::BadHeader {
        path: path.to_path_buf(),
        message,
    };
    if ndim == 3 {
        let (rows, cols) = (dims[1] as u64, dims[2] as u64);
        let side = crate::ir::Limits::MAX_SIDE;
        if rows == 0 || cols == 0 || rows > side || cols > side {
            return Err(bad_header(format!(
                "its images are {rows}x{cols}; each side must be 1 to {side}"
            )));
        }
    }
    // u32 dimensions multiplied in u128 cannot overflow for ndim <= 3.
    let data = dims.iter().map(|&d| d as u128).product::<u128>();
    if data > MAX_IDX_BYTES as u128 {
        return Err(bad_header(format!(
            "its header declares {data} bytes of data ({}), more than the {} resnetc reads",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" x "),
            crate::files::human(MAX_IDX_BYTES)
        )));
    }
    let (data, expected) = (data as u64, header as u64 + data as u64);
    if !gzipped && file_len < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: file_len,
        });
    }
    if !gzipped && file_len > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            extra: file_len - expected,
        });
    }
    // Uncompressed, the file was just checked to hold `data` bytes; gzipped, the vector
    // grows only as decompressed bytes arrive.
    let mut bytes = Vec::with_capacity(if gzipped { 0 } else { data as usize });
    (&mut reader)
        .take(data + 1)
        .read_to_end(&mut bytes)
        .map_err(on_read)?;
    let got = bytes.len() as u64;
    if got < data {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: header as u64 + got,
        });
    }
    if got > data {
        // Count what follows, up to 1 MiB more (a stream may be endless).
        let more =
            std::io::copy(&mut (&mut reader).take(1 << 20), &mut std::io::sink()).unwrap_or(0);
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            extra: got - data + more,
        });
    }
    Ok((dims, bytes))
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

    use crate::files::temp_file as temp;

    #[test]
    fn reads_raw_and_gzipped() {
        let bytes = idx(
            IMAGES_MAGIC,
            &[2, 2, 3],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        );
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
        let magic =
            read_labels(&temp("b-labels", &idx(IMAGES_MAGIC, &[1, 1, 1], &[0]))).unwrap_err();
        assert!(
            magic
                .to_string()
                .contains("magic number 0x00000803, expected 0x00000801"),
            "{magic}"
        );
        let short =
            read_images(&temp("c-images", &idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 7]))).unwrap_err();
        assert!(short.to_string().contains("truncated"), "{short}");
        assert!(short.to_string().contains("c-images"), "{short}");
        let long = read_labels(&temp("d-labels", &idx(LABELS_MAGIC, &[1], &[0, 1]))).unwrap_err();
        assert!(
            matches!(long, DataError::TrailingBytes { extra: 1, .. }),
            "{long}"
        );
        let tiny = read_labels(&temp("e-labels", &[0, 0])).unwrap_err();
        assert!(matches!(tiny, DataError::Truncated { .. }), "{tiny}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(LABELS_MAGIC, &[100], &[1; 100])).unwrap();
        let gz = gz.finish().unwrap();
        let cut = read_labels(&temp("f-labels.gz", &gz[..gz.len() / 2])).unwrap_err();
        assert!(matches!(cut, DataError::Gzip { .. }), "{cut}");
    }
}
