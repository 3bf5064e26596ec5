//! Latency estimates for the proximity strategy: the region latency matrix,
//! great-circle distance, and the one estimate function both the index walk
//! and explain-placement use (so they can never disagree).
//!
//! Precedence, best evidence first:
//! 1. an RTT the node's agent measured to the origin's region;
//! 2. great-circle distance between node and origin coordinates, converted as
//!    `ms = km / 100 + 1` — light in fibre covers ~200 km per ms, so a round
//!    trip costs ~1 ms per 100 km, plus ~1 ms of switching;
//! 3. the configured region matrix (node's effective region vs origin region).

use crate::domain::Location;
use crate::registry::NodeEntry;
use rstar::PointDistance;
use std::collections::HashMap;

/// Mean Earth radius used for great-circle distances.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Region-to-region latency matrix (symmetric).
#[derive(Clone, Debug)]
pub struct LatencyModel {
    pairs: HashMap<Box<str>, HashMap<Box<str>, f64>>,
    same_region_ms: f64,
    default_ms: f64,
    unknown_region_ms: f64,
}

impl Default for LatencyModel {
    /// The prototype's values; unknown pairs 150 ms, empty regions 250 ms.
    fn default() -> Self {
        let p = |a: &str, b: &str, ms: f64| (a.to_string(), b.to_string(), ms);
        LatencyModel::new(
            [
                p("us-east", "us-west", 45.0),
                p("us-east", "eu-west", 80.0),
                p("eu-west", "eu-central", 15.0),
                p("us-east", "ap-south", 180.0),
                p("eu-west", "ap-northeast", 200.0),
            ],
            5.0,
            150.0,
        )
    }
}

impl LatencyModel {
    /// A matrix from symmetric pairs. A pair not listed costs `default_ms`; a
    /// node or origin whose region is unknown (empty) costs
    /// `max(default_ms, 250)`, so that known-but-far beats unknown.
    pub fn new(pairs: impl IntoIterator<Item = (String, String, f64)>, same_region_ms: f64, default_ms: f64) -> Self {
        let mut m: HashMap<Box<str>, HashMap<Box<str>, f64>> = HashMap::new();
        for (a, b, ms) in pairs {
            m.entry(a.as_str().into()).or_default().insert(b.as_str().into(), ms);
            m.entry(b.into()).or_default().insert(a.into(), ms);
        }
        LatencyModel { pairs: m, same_region_ms, default_ms, unknown_region_ms: default_ms.max(250.0) }
    }

    /// Overrides the cost of an unknown (empty) region.
    pub fn with_unknown_region_ms(mut self, ms: f64) -> Self {
        self.unknown_region_ms = ms;
        self
    }

    /// Estimated RTT between two regions, ms.
    pub fn region_ms(&self, a: &str, b: &str) -> f64 {
        if a.is_empty() || b.is_empty() {
            self.unknown_region_ms
        } else if a == b {
            self.same_region_ms
        } else {
            self.pairs.get(a).and_then(|m| m.get(b)).copied().unwrap_or(self.default_ms)
        }
    }
}

/// Where an estimate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyBasis {
    /// The node measured an RTT to the origin's region.
    Measured,
    /// Great-circle distance between coordinates.
    Distance,
    /// The region matrix.
    RegionMatrix,
}

/// Lat/lon in degrees → a point on the unit sphere, so that Euclidean
/// (chord) order equals great-circle order. `None` for missing or non-finite
/// coordinates. `f32` is ~0.5 m of precision on Earth and halves the R-tree.
pub fn unit_vector(coords: Option<(f64, f64)>) -> Option<[f32; 3]> {
    let (lat, lon) = coords?;
    if !lat.is_finite() || !lon.is_finite() {
        return None;
    }
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    Some([(lat.cos() * lon.cos()) as f32, (lat.cos() * lon.sin()) as f32, lat.sin() as f32])
}

/// Squared chord between two unit vectors → estimated ms (`km / 100 + 1`).
pub(crate) fn chord2_to_ms(chord2: f32) -> f64 {
    let chord = f64::from(chord2).max(0.0).sqrt().min(2.0);
    let km = 2.0 * (chord / 2.0).asin() * EARTH_RADIUS_KM;
    km / 100.0 + 1.0
}

/// Estimated ms between two unit vectors (computed exactly as the R-tree orders them).
pub(crate) fn geo_ms(node: &[f32; 3], origin: &[f32; 3]) -> f64 {
    chord2_to_ms(node.distance_2(origin))
}

/// The RTT a node measured to `region`, if it reported a usable one.
pub(crate) fn measured_rtt(node: &NodeEntry, region: &str) -> Option<f64> {
    if region.is_empty() {
        return None;
    }
    node.live
        .region_rtt_ms
        .iter()
        .find(|(r, ms)| &**r == region && ms.is_finite() && *ms >= 0.0)
        .map(|(_, ms)| f64::from(*ms))
}

/// The latency estimate from `origin` to `node` that proximity minimises.
pub fn estimate_latency_ms(model: &LatencyModel, node: &NodeEntry, origin: &Location) -> (f64, LatencyBasis) {
    if let Some(ms) = measured_rtt(node, &origin.region) {
        return (ms, LatencyBasis::Measured);
    }
    if let (Some(n), Some(o)) = (unit_vector(node.location.coordinates), unit_vector(origin.coordinates)) {
        return (geo_ms(&n, &o), LatencyBasis::Distance);
    }
    (model.region_ms(&origin.region, node.region()), LatencyBasis::RegionMatrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_follows_the_brief() {
        let m = LatencyModel::default();
        assert_eq!(m.region_ms("us-east", "us-east"), 5.0);
        assert_eq!(m.region_ms("us-east", "us-west"), 45.0);
        assert_eq!(m.region_ms("us-west", "us-east"), 45.0);
        assert_eq!(m.region_ms("eu-west", "us-east"), 80.0);
        assert_eq!(m.region_ms("eu-central", "eu-west"), 15.0);
        assert_eq!(m.region_ms("ap-south", "us-east"), 180.0);
        assert_eq!(m.region_ms("ap-northeast", "eu-west"), 200.0);
        assert_eq!(m.region_ms("us-west", "ap-south"), 150.0);
        assert_eq!(m.region_ms("", "us-east"), 250.0);
        assert_eq!(m.region_ms("mars", "mars"), 5.0);
        let custom = LatencyModel::new([("a".into(), "b".into(), 7.0)], 1.0, 300.0);
        assert_eq!(custom.region_ms("b", "a"), 7.0);
        assert_eq!(custom.region_ms("a", "c"), 300.0);
        assert_eq!(custom.region_ms("a", ""), 300.0);
    }

    #[test]
    fn distance_converts_at_one_ms_per_100_km() {
        // Paris → Berlin is ~878 km great-circle.
        let paris = unit_vector(Some((48.8566, 2.3522))).unwrap();
        let berlin = unit_vector(Some((52.52, 13.405))).unwrap();
        let ms = geo_ms(&paris, &berlin);
        assert!((ms - 9.78).abs() < 0.1, "{ms}");
        assert!((geo_ms(&paris, &paris) - 1.0).abs() < 1e-9);
        // Antipodes: half the circumference.
        let a = unit_vector(Some((0.0, 0.0))).unwrap();
        let b = unit_vector(Some((0.0, 180.0))).unwrap();
        assert!((geo_ms(&a, &b) - (std::f64::consts::PI * EARTH_RADIUS_KM / 100.0 + 1.0)).abs() < 0.5);
        assert!(unit_vector(Some((f64::NAN, 0.0))).is_none());
    }
}
