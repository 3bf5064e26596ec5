//! What the device reports about itself, read from the OS: CPU (deltas of
//! `/proc/stat`), memory (`/proc/meminfo`), load (`/proc/loadavg`), disk
//! (`statvfs` of the state dir), battery (`/sys/class/power_supply`) and
//! temperature (`/sys/class/thermal`), and from those the power mode by the
//! brief's harvesting rules (`fog_core::domain::PowerMode::from_sensors`).
//!
//! The parsers are pure functions of file contents; [`Sampler`] only reads
//! files. Both roots are configurable so tests can point at a fake tree.

use std::path::{Path, PathBuf};

use fog_core::domain::PowerMode;
use fog_proto::v1 as pb;

/// Aggregate CPU times from the first line of `/proc/stat`, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Idle + iowait.
    pub idle: u64,
    /// Everything (guest time is already inside user/nice).
    pub total: u64,
}

/// Parses the aggregate `cpu ` line of `/proc/stat`.
pub fn parse_proc_stat(s: &str) -> Option<CpuTimes> {
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let total = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some(CpuTimes { idle, total })
}

/// CPU usage 0 to 1 between two samples.
pub fn cpu_usage(prev: CpuTimes, now: CpuTimes) -> f64 {
    let total = now.total.saturating_sub(prev.total);
    if total == 0 {
        return 0.0;
    }
    let idle = now.idle.saturating_sub(prev.idle).min(total);
    (total - idle) as f64 / total as f64
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in KiB.
pub fn parse_meminfo(s: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let total = field("MemTotal")?;
    // Kernels before 3.14 have no MemAvailable: free + cached is the usual estimate.
    let available = field("MemAvailable").or_else(|| Some(field("MemFree")? + field("Cached").unwrap_or(0)))?;
    Some((total, available.min(total)))
}

/// The one-minute load average of `/proc/loadavg`.
pub fn parse_loadavg(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

/// Battery state, if the device has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Battery {
    /// 0 to 100.
    pub percent: u8,
    /// On external power (charging, full, or plugged in but not charging).
    pub charging: bool,
}

/// The first battery under `<sys>/class/power_supply` (a supply of type
/// `Battery`, or any with a `capacity` file when `type` is missing).
pub fn read_battery(sys_root: &Path) -> Option<Battery> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(sys_root.join("class/power_supply")).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    // Plugged-in mains adapters say so in their `online` file; a battery's status
    // is the primary signal, this the fallback.
    let mains_online = dirs.iter().any(|d| {
        read_trim(&d.join("type")).as_deref() == Some("Mains") && read_trim(&d.join("online")).as_deref() == Some("1")
    });
    dirs.iter().find_map(|d| {
        let kind = read_trim(&d.join("type"));
        if kind.as_deref().is_some_and(|k| k != "Battery") {
            return None;
        }
        let percent: u8 = read_trim(&d.join("capacity"))?.parse::<u32>().ok()?.min(100) as u8;
        let status = read_trim(&d.join("status")).unwrap_or_default();
        let charging = match status.as_str() {
            "Charging" | "Full" | "Not charging" => true,
            "Discharging" => false,
            _ => mains_online,
        };
        Some(Battery { percent, charging })
    })
}

/// The hottest `<sys>/class/thermal/thermal_zone*/temp`, in °C (files hold
/// millidegrees). Nonsense readings (below -40 °C or above 150 °C) are skipped.
pub fn read_temperature(sys_root: &Path) -> Option<f64> {
    let zones = std::fs::read_dir(sys_root.join("class/thermal")).ok()?;
    zones
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| read_trim(&e.path().join("temp"))?.parse::<i64>().ok())
        .map(|milli| milli as f64 / 1000.0)
        .filter(|c| (-40.0..=150.0).contains(c))
        .reduce(f64::max)
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Where to read from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `/sys`.
    pub sys_root: PathBuf,
    /// A path on the disk whose space is offered (the state dir).
    pub disk_path: PathBuf,
}

/// One reading of the live state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// 0 to 1.
    pub cpu_usage: f64,
    /// 0 to 1.
    pub memory_usage: f64,
    /// One-minute load average.
    pub load_average: f64,
    /// Battery, if any.
    pub battery: Option<Battery>,
    /// °C, if known.
    pub temperature_c: Option<f64>,
    /// By the harvesting rules.
    pub power_mode: PowerMode,
}

impl Sample {
    /// Fills the live-state fields of a heartbeat.
    pub fn fill(&self, hb: &mut pb::Heartbeat) {
        hb.cpu_usage = self.cpu_usage;
        hb.memory_usage = self.memory_usage;
        hb.load_average = self.load_average;
        hb.battery_percent = self.battery.map_or(-1, |b| i32::from(b.percent));
        hb.charging = self.battery.is_some_and(|b| b.charging);
        hb.temperature_celsius = self.temperature_c.unwrap_or(-1000.0);
        hb.power_mode = power_mode_to_proto(self.power_mode) as i32;
    }
}

/// The wire form of a power mode.
pub fn power_mode_to_proto(m: PowerMode) -> pb::PowerMode {
    match m {
        PowerMode::Performance => pb::PowerMode::Performance,
        PowerMode::Balanced => pb::PowerMode::Balanced,
        PowerMode::PowerSave => pb::PowerMode::PowerSave,
        PowerMode::Critical => pb::PowerMode::Critical,
    }
}

/// Reads samples; keeps the previous CPU times for the next delta.
#[derive(Debug)]
pub struct Sampler {
    src: Sources,
    prev_cpu: Option<CpuTimes>,
}

impl Sampler {
    /// A sampler over `src` (takes a first CPU reading as the baseline).
    pub fn new(src: Sources) -> Sampler {
        let mut s = Sampler { src, prev_cpu: None };
        s.prev_cpu = s.read_cpu();
        s
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.src.proc_root.join(name)).ok()
    }

    fn read_cpu(&self) -> Option<CpuTimes> {
        parse_proc_stat(&self.read("stat")?)
    }

    /// Reads everything now. Missing sources read as zero / unknown.
    pub fn sample(&mut self) -> Sample {
        let cpu = self.read_cpu();
        let cpu_usage = match (self.prev_cpu, cpu) {
            (Some(a), Some(b)) => cpu_usage(a, b),
            _ => 0.0,
        };
        if cpu.is_some() {
            self.prev_cpu = cpu;
        }
        let memory_usage = self
            .read("meminfo")
            .and_then(|s| parse_meminfo(&s))
            .map_or(0.0, |(total, avail)| if total == 0 { 0.0 } else { (total - avail) as f64 / total as f64 });
        let load_average = self.read("loadavg").and_then(|s| parse_loadavg(&s)).unwrap_or(0.0);
        let battery = read_battery(&self.src.sys_root);
        let temperature_c = read_temperature(&self.src.sys_root);
        let power_mode =
            PowerMode::from_sensors(battery.map(|b| b.percent), battery.is_some_and(|b| b.charging), temperature_c);
        Sample { cpu_usage, memory_usage, load_average, battery, temperature_c, power_mode }
    }

    /// What the device offers: all cores, total memory, and the space available
    /// on the state dir's file system.
    pub fn capacity(&self) -> pb::Resources {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let memory_mb = self.read("meminfo").and_then(|s| parse_meminfo(&s)).map_or(0, |(total, _)| total / 1024);
        let storage_mb = nix::sys::statvfs::statvfs(&self.src.disk_path)
            .map(|v| v.blocks_available().saturating_mul(v.fragment_size()) / (1024 * 1024))
            .unwrap_or(0);
        pb::Resources { cpu_millis: cores.saturating_mul(1000), memory_mb, storage_mb, gpus: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\nintr 1 2\n";
    const STAT_B: &str = "cpu  250 0 150 850 150 0 0 0 0 0\ncpu0 1 1 1 1\n";

    #[test]
    fn cpu_usage_from_stat_deltas() {
        let a = parse_proc_stat(STAT_A).unwrap();
        assert_eq!(a, CpuTimes { idle: 800, total: 1000 });
        let b = parse_proc_stat(STAT_B).unwrap();
        // +400 ticks, of which +200 idle/iowait.
        assert!((cpu_usage(a, b) - 0.5).abs() < 1e-9);
        assert_eq!(cpu_usage(b, b), 0.0);
        assert_eq!(parse_proc_stat("intr 1\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn meminfo_and_loadavg() {
        let m = "MemTotal:        8000000 kB\nMemFree:  1000000 kB\nMemAvailable:    2000000 kB\nCached: 5 kB\n";
        assert_eq!(parse_meminfo(m), Some((8_000_000, 2_000_000)));
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\n";
        assert_eq!(parse_meminfo(old), Some((1000, 300)));
        assert_eq!(parse_meminfo("nothing"), None);
        assert_eq!(parse_loadavg("0.52 0.40 0.33 1/234 5678\n"), Some(0.52));
        assert_eq!(parse_loadavg(""), None);
    }

    struct FakeSys(tempfile::TempDir);

    impl FakeSys {
        fn new() -> FakeSys {
            FakeSys(tempfile::tempdir().unwrap())
        }
        fn file(&self, rel: &str, content: &str) -> &Self {
            let p = self.0.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            self
        }
        fn sampler(&self) -> Sampler {
            let proc_root = self.0.path().join("proc");
            Sampler::new(Sources { proc_root, sys_root: self.0.path().join("sys"), disk_path: self.0.path().into() })
        }
    }

    #[test]
    fn low_battery_discharging_is_power_save() {
        let fake = FakeSys::new();
        fake.file("sys/class/power_supply/AC/type", "Mains\n")
            .file("sys/class/power_supply/AC/online", "0\n")
            .file("sys/class/power_supply/BAT0/type", "Battery\n")
            .file("sys/class/power_supply/BAT0/capacity", "15\n")
            .file("sys/class/power_supply/BAT0/status", "Discharging\n");
        let s = fake.sampler().sample();
        assert_eq!(s.battery, Some(Battery { percent: 15, charging: false }));
        assert_eq!(s.power_mode, PowerMode::PowerSave);
        let mut hb = pb::Heartbeat::default();
        s.fill(&mut hb);
        assert_eq!((hb.battery_percent, hb.charging), (15, false));
        assert_eq!(hb.power_mode, pb::PowerMode::PowerSave as i32);
        assert_eq!(hb.temperature_celsius, -1000.0);
        // Plugged in: the same level is fine.
        fake.file("sys/class/power_supply/BAT0/status", "Charging\n");
        assert_eq!(fake.sampler().sample().power_mode, PowerMode::Performance);
    }

    #[test]
    fn temperature_is_the_hottest_zone() {
        let fake = FakeSys::new();
        fake.file("sys/class/thermal/thermal_zone0/temp", "41000\n")
            .file("sys/class/thermal/thermal_zone1/temp", "56500\n")
            .file("sys/class/thermal/thermal_zone2/temp", "999999\n")
            .file("sys/class/thermal/cooling_device0/temp", "90000\n");
        let s = fake.sampler().sample();
        assert_eq!(s.temperature_c, Some(56.5));
        assert_eq!(s.battery, None);
        assert_eq!(s.power_mode, PowerMode::PowerSave);
        fake.file("sys/class/thermal/thermal_zone1/temp", "66000\n");
        assert_eq!(fake.sampler().sample().power_mode, PowerMode::Critical);
    }

    #[test]
    fn nothing_exposed_is_performance_and_unknown() {
        let fake = FakeSys::new();
        let mut s = fake.sampler();
        let sample = s.sample();
        assert_eq!(sample, Sample::default());
        let mut hb = pb::Heartbeat::default();
        sample.fill(&mut hb);
        assert_eq!((hb.battery_percent, hb.temperature_celsius), (-1, -1000.0));
    }

    #[test]
    fn sampler_reads_proc_files() {
        let fake = FakeSys::new();
        fake.file("proc/stat", STAT_A)
            .file("proc/meminfo", "MemTotal: 4096000 kB\nMemAvailable: 1024000 kB\n")
            .file("proc/loadavg", "1.50 1.00 0.50 2/100 42\n");
        let mut s = fake.sampler();
        fake.file("proc/stat", STAT_B);
        let sample = s.sample();
        assert!((sample.cpu_usage - 0.5).abs() < 1e-9);
        assert!((sample.memory_usage - 0.75).abs() < 1e-9);
        assert_eq!(sample.load_average, 1.5);
        let cap = s.capacity();
        assert_eq!(cap.memory_mb, 4000);
        assert!(cap.cpu_millis >= 1000);
        assert!(cap.storage_mb > 0);
    }

    #[test]
    fn the_real_os_is_readable() {
        let mut s = Sampler::new(Sources { proc_root: "/proc".into(), sys_root: "/sys".into(), disk_path: "/".into() });
        let sample = s.sample();
        assert!((0.0..=1.0).contains(&sample.cpu_usage));
        assert!(sample.memory_usage > 0.0 && sample.memory_usage <= 1.0);
        assert!(s.capacity().memory_mb > 0);
    }
}
