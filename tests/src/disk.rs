//! Disk faults for the fault suite: a directory made read-only under a
//! running process, and a small disk that can be filled. Both need root
//! (`.ci/run` runs as root on the project's machines), and say so if not.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory and everything in it made immutable (`chattr -R +i`): writes
/// fail even for root and even through files already open (EPERM), as on a
/// disk that went read-only under a running process. Undone when dropped.
pub struct ReadOnly(PathBuf);

impl ReadOnly {
    fn chattr(dir: &Path, flag: &str) -> Output {
        Command::new("chattr").args(["-R", flag]).arg(dir).output().expect("chattr (e2fsprogs) runs")
    }

    /// Makes `dir` read-only.
    pub fn set(dir: &Path) -> ReadOnly {
        let out = Self::chattr(dir, "+i");
        assert!(
            out.status.success(),
            "chattr +i needs root and a file system with inode flags (ext4, xfs, btrfs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ReadOnly(dir.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        Self::chattr(&self.0, "-i");
    }
}

/// A small tmpfs mounted at a directory: a disk that can be filled.
/// Unmounted (lazily) when dropped.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`8m`, say) at `dir`, creating it.
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(out.status.success(), "mounting a tmpfs needs root: {}", String::from_utf8_lossy(&out.stderr));
        SmallDisk(dir.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Fills it to the last byte with a file of zeros; returns the file.
    pub fn fill(&self) -> PathBuf {
        let path = self.0.join("fill");
        let mut f = std::fs::File::create(&path).expect("create the fill file");
        let chunk = vec![0u8; 64 << 10];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}
