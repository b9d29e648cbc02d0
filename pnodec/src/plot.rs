//! SVG plots (plotters): a trajectory (states against t) and a loss curve. Both render into a
//! string, which [`crate::output::write_new`] writes, so plots obey the no-overwrite rule too.

use plotters::prelude::*;

/// At most this many state components are drawn (the first ones).
pub const MAX_CURVES: usize = 12;

type PlotResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("cannot draw the plot: {e}")
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-12 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// The states at the output times: `states` is `K × n` row-major, `names` the `n` element
/// names; with `log_x` the time axis is logarithmic (points at t ≤ 0 are left out).
pub fn trajectory_svg(
    title: &str,
    times: &[f64],
    states: &[f64],
    names: &[String],
    log_x: bool,
) -> PlotResult<String> {
    let n = names.len().max(1);
    let shown = names.len().min(MAX_CURVES);
    let keep: Vec<usize> = (0..times.len())
        .filter(|&k| !log_x || times[k] > 0.0)
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let ys = keep
            .iter()
            .flat_map(|&k| states[k * n..k * n + shown].iter().copied());
        let (y0, y1) = bounds(ys);
        let (t0, t1) = bounds(keep.iter().map(|&k| times[k]));
        let caption = format!("{title}: states at the output times");
        // A log-spaced grid is drawn against log10 t (plotters' log axes need a second
        // code path for every series; the labels say which axis it is).
        let x = |t: f64| if log_x { t.log10() } else { t };
        let (t0, t1) = if log_x {
            bounds(keep.iter().map(|&k| x(times[k])))
        } else {
            (t0, t1)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(t0..t1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(if log_x { "log10 t" } else { "t" })
            .y_desc("state")
            .draw()
            .map_err(err)?;
        for i in 0..shown {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64)> = keep
                .iter()
                .map(|&k| (x(times[k]), states[k * n + i]))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(names[i].clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The loss per iteration on a logarithmic axis (non-positive losses are left out).
pub fn losses_svg(title: &str, losses: &[f64]) -> PlotResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let positive = || losses.iter().copied().filter(|&l| l > 0.0 && l.is_finite());
        let lo = positive().fold(f64::INFINITY, f64::min);
        let hi = positive().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() {
            (lo * 0.8, (hi * 1.25).max(lo * 1.01))
        } else {
            (1e-3, 1.0)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{title}: loss per iteration"), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0..losses.len().max(1), (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("loss")
            .draw()
            .map_err(err)?;
        let points = losses
            .iter()
            .enumerate()
            .filter(|(_, l)| **l > 0.0 && l.is_finite())
            .map(|(i, &l)| (i, l));
        chart
            .draw_series(LineSeries::new(points, COLORS[0].stroke_width(2)))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_render_to_svg() {
        let names = vec!["u[0]".to_string(), "u[1]".to_string()];
        let times = [0.0, 0.5, 1.0];
        let states = [1.0, 0.0, 0.5, 0.5, 0.2, 0.8];
        let svg = trajectory_svg("m", &times, &states, &names, false).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("u[1]"));
        let log = trajectory_svg("m", &[1e-6, 1e-3, 1.0], &states, &names, true).unwrap();
        assert!(log.contains("<svg"));
        let loss = losses_svg("m", &[1.0, 0.5, 0.1, 0.0]).unwrap();
        assert!(loss.contains("<svg"));
    }
}
