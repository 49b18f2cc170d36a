//! The process's memory, read from `/proc/self/status` (Linux). Its `VmRSS` and `VmSize` lines
//! are in kibibytes, so no page size (and no `unsafe` call to learn it) is needed. Elsewhere
//! the numbers are absent.

use serde::Serialize;

/// Memory of this process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcessMemory {
    /// Resident set size: memory in RAM now.
    pub resident_bytes: u64,
    /// Virtual memory size.
    pub virtual_bytes: u64,
}

/// This process's memory now; `None` where `/proc` is not available.
pub fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status(&status)
}

/// Reads `VmRSS:` and `VmSize:` from the text of a `/proc/<pid>/status` file.
fn parse_status(status: &str) -> Option<ProcessMemory> {
    let kibibytes = |key: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(key))?;
        let value = line[key.len()..].split_whitespace().next()?;
        value.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some(ProcessMemory {
        resident_bytes: kibibytes("VmRSS:")?,
        virtual_bytes: kibibytes("VmSize:").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_and_virtual_sizes_in_bytes() {
        let status =
            "Name:\tswitchboard\nVmPeak:\t  999 kB\nVmSize:\t  2048 kB\nVmRSS:\t   512 kB\n";
        assert_eq!(
            parse_status(status),
            Some(ProcessMemory {
                resident_bytes: 512 * 1024,
                virtual_bytes: 2048 * 1024,
            })
        );
    }

    #[test]
    fn a_status_without_rss_is_none() {
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_resident_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let memory = process_memory().expect("/proc/self/status is readable on Linux");
            assert!(memory.resident_bytes > 0);
        }
    }
}
