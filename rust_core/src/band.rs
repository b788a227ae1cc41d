//! Band artifacts: seasonal bands fitted in Python (statsmodels) and handed to Rust.
//!
//! An artifact is a forecast on a regular grid: `expected[k]` and `sigma[k]` hold for the
//! step starting at `anchor_ms + k * step_ms`. While an artifact covers a point's time (inside
//! the grid and not past `valid_until_ms`) the point is judged against it; otherwise the
//! streaming band is used. Versions only move forward: an older or equal version is refused,
//! so a slow fit finishing late cannot replace a newer one.

use serde::Deserialize;

/// The fitted models Referee knows: names are static so a stored sample stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FittedModel {
    Stl,
    Mstl,
    UnobservedComponents,
    SarimaxFourier,
    OlsFourier,
}

impl FittedModel {
    pub fn name(self) -> &'static str {
        match self {
            FittedModel::Stl => "statsmodels.stl",
            FittedModel::Mstl => "statsmodels.mstl",
            FittedModel::UnobservedComponents => "statsmodels.unobserved_components",
            FittedModel::SarimaxFourier => "statsmodels.sarimax_fourier",
            FittedModel::OlsFourier => "statsmodels.ols_fourier",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            FittedModel::Stl,
            FittedModel::Mstl,
            FittedModel::UnobservedComponents,
            FittedModel::SarimaxFourier,
            FittedModel::OlsFourier,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// The JSON an artifact arrives as (`SeriesStore.set_band`).
#[derive(Debug, Clone, Deserialize)]
pub struct ArtifactSpec {
    pub version: u64,
    pub model: String,
    pub anchor_ms: i64,
    pub step_ms: i64,
    pub expected: Vec<f64>,
    pub sigma: Vec<f64>,
    pub valid_until_ms: i64,
    pub fitted_at_ms: i64,
    /// Backtest mean absolute error of the fitted model and of the streaming band on the same
    /// held-out points; the artifact is refused when it is not better.
    pub backtest_mae: f64,
    pub streaming_mae: f64,
}

#[derive(Debug, Clone)]
pub struct BandArtifact {
    pub version: u64,
    pub model: FittedModel,
    pub anchor_ms: i64,
    pub step_ms: i64,
    pub expected: Vec<f64>,
    pub sigma: Vec<f64>,
    pub valid_until_ms: i64,
    pub fitted_at_ms: i64,
    pub backtest_mae: f64,
    pub streaming_mae: f64,
}

/// Most steps an artifact may hold (a week of 1-minute steps).
pub const MAX_STEPS: usize = 7 * 24 * 60;

impl BandArtifact {
    /// Validates a spec; the error names the field.
    pub fn from_spec(spec: ArtifactSpec) -> Result<Self, String> {
        let model = FittedModel::parse(&spec.model).ok_or_else(|| {
            format!(
                "model: unknown fitted model {:?} (expected statsmodels.stl, statsmodels.mstl, \
                 statsmodels.unobserved_components, statsmodels.sarimax_fourier or \
                 statsmodels.ols_fourier)",
                spec.model
            )
        })?;
        if spec.step_ms <= 0 {
            return Err("step_ms: must be positive".into());
        }
        if spec.expected.is_empty() || spec.expected.len() > MAX_STEPS {
            return Err(format!("expected: must hold 1 to {MAX_STEPS} steps"));
        }
        if spec.sigma.len() != spec.expected.len() {
            return Err("sigma: must have as many steps as expected".into());
        }
        if spec.expected.iter().any(|x| !x.is_finite()) {
            return Err("expected: every value must be finite".into());
        }
        if spec.sigma.iter().any(|x| !x.is_finite() || *x <= 0.0) {
            return Err("sigma: every value must be finite and positive".into());
        }
        if spec.valid_until_ms < spec.anchor_ms {
            return Err("valid_until_ms: before anchor_ms".into());
        }
        if !(spec.backtest_mae.is_finite() && spec.streaming_mae.is_finite()) {
            return Err("backtest_mae/streaming_mae: must be finite".into());
        }
        if spec.backtest_mae > spec.streaming_mae {
            return Err(format!(
                "quality: backtest MAE {} is worse than the streaming band's {}",
                spec.backtest_mae, spec.streaming_mae
            ));
        }
        Ok(BandArtifact {
            version: spec.version,
            model,
            anchor_ms: spec.anchor_ms,
            step_ms: spec.step_ms,
            expected: spec.expected,
            sigma: spec.sigma,
            valid_until_ms: spec.valid_until_ms,
            fitted_at_ms: spec.fitted_at_ms,
            backtest_mae: spec.backtest_mae,
            streaming_mae: spec.streaming_mae,
        })
    }

    /// (expected, sigma) at `ts_ms` when the artifact covers it.
    pub fn at(&self, ts_ms: i64) -> Option<(f64, f64)> {
        if ts_ms < self.anchor_ms || ts_ms > self.valid_until_ms {
            return None;
        }
        let k = ((ts_ms - self.anchor_ms) / self.step_ms) as usize;
        Some((*self.expected.get(k)?, *self.sigma.get(k)?))
    }

    pub fn end_ms(&self) -> i64 {
        self.anchor_ms + self.step_ms * self.expected.len() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ArtifactSpec {
        ArtifactSpec {
            version: 1,
            model: "statsmodels.stl".into(),
            anchor_ms: 1000,
            step_ms: 100,
            expected: vec![1.0, 2.0, 3.0],
            sigma: vec![0.5, 0.5, 0.5],
            valid_until_ms: 1250,
            fitted_at_ms: 900,
            backtest_mae: 1.0,
            streaming_mae: 2.0,
        }
    }

    #[test]
    fn covers_only_its_grid_and_validity() {
        let a = BandArtifact::from_spec(spec()).unwrap();
        assert_eq!(a.at(999), None);
        assert_eq!(a.at(1000), Some((1.0, 0.5)));
        assert_eq!(a.at(1199), Some((2.0, 0.5)));
        assert_eq!(a.at(1250), Some((3.0, 0.5)));
        assert_eq!(a.at(1251), None, "past valid_until");
        assert_eq!(a.end_ms(), 1300);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let mut s = spec();
        s.model = "prophet".into();
        assert!(BandArtifact::from_spec(s)
            .unwrap_err()
            .starts_with("model:"));
        let mut s = spec();
        s.sigma = vec![0.5, 0.0, 0.5];
        assert!(BandArtifact::from_spec(s)
            .unwrap_err()
            .starts_with("sigma:"));
        let mut s = spec();
        s.backtest_mae = 3.0;
        assert!(BandArtifact::from_spec(s)
            .unwrap_err()
            .starts_with("quality:"));
        let mut s = spec();
        s.expected.pop();
        assert!(BandArtifact::from_spec(s).is_err());
    }
}
