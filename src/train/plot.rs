//! `curves.png` and `curves.svg`: train loss, train accuracy and test accuracy against the
//! epoch, like the article's (d2l's `train_ch6`) plot, redrawn after every epoch.

use super::atomic;
use super::metrics::EpochMetrics;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, see `fonts/LICENSE-DejaVu.txt`): plotters draws
/// text with ab_glyph from a font registered from bytes, so the plots need no system fonts.
static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

const SIZE: (u32, u32) = (640, 440);

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file; were it not, labels would be missing
        // and drawing would report the error.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws the curves of `history` (x axis 1..=`epochs`) into `png` and `svg`, each
/// replaced atomically.
pub fn draw(
    png: &Path,
    svg: &Path,
    history: &[EpochMetrics],
    epochs: usize,
) -> Result<(), super::TrainError> {
    register_font();
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: String| super::TrainError::Plot { path, message: e }
    };
    // BitMapBackend picks the image format from the extension: the temporary file keeps `.png`.
    atomic::replace_with(png, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        chart(&root, history, epochs)?;
        root.present().map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        Ok(io) => io.to_string(),
        Err(s) => s,
    })
    .map_err(err(png))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        chart(&root, history, epochs).map_err(err(svg))?;
        root.present()
            .map_err(|e| e.to_string())
            .map_err(err(svg))?;
    }
    atomic::write_bytes(svg, text.as_bytes())
        .map_err(|e| e.to_string())
        .map_err(err(svg))
}

/// A curve's legend, colour and value.
type Curve = (&'static str, RGBColor, fn(&EpochMetrics) -> f64);

fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    history: &[EpochMetrics],
    epochs: usize,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let x_max = epochs.max(history.last().map_or(1, |m| m.epoch)).max(2) as f64;
    let y_max = history
        .iter()
        .map(|m| m.train_loss)
        .fold(1.0f64, f64::max)
        .min(10.0)
        * 1.05;
    let mut chart = ChartBuilder::on(root)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(1f64..x_max, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(epochs.clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    let series: [Curve; 3] = [
        ("train loss", RGBColor(31, 119, 180), |m| m.train_loss),
        ("train acc", RGBColor(214, 39, 180), |m| m.train_acc),
        ("test acc", RGBColor(44, 160, 44), |m| m.test_acc),
    ];
    for (name, color, value) in series {
        let points: Vec<(f64, f64)> = history
            .iter()
            .map(|m| (m.epoch as f64, value(m).min(y_max)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_png_and_svg() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let m = |epoch, l, a, t| EpochMetrics {
            epoch,
            train_loss: l,
            train_acc: a,
            test_acc: t,
            examples_per_sec: 1.0,
            seconds: 1.0,
        };
        let (png, svg) = (dir.join("curves.png"), dir.join("curves.svg"));
        draw(&png, &svg, &[m(1, 0.9, 0.7, 0.75)], 10).unwrap();
        draw(
            &png,
            &svg,
            &[m(1, 0.9, 0.7, 0.75), m(2, 0.5, 0.82, 0.84)],
            10,
        )
        .unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("test acc") && text.contains("epoch"),
            "{}",
            &text[..200]
        );
    }
}
