//! Fixtures shared by the benches: the regions of the demo fleet and a
//! deterministic random source (no rand dependency in the core).

pub const REGIONS: [(&str, f64, f64); 6] = [
    ("us-east", 39.0, -77.0),
    ("us-west", 37.5, -122.0),
    ("eu-west", 51.5, -0.1),
    ("eu-central", 50.1, 8.7),
    ("ap-south", 19.1, 72.9),
    ("ap-northeast", 35.7, 139.7),
];

/// SplitMix64: a deterministic fleet without a rand dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
