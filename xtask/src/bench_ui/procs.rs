//! Memory of a process tree: the processes under a pid, and memory (PSS, RSS, USS and
//! anonymous from `/proc/<pid>/smaps_rollup`) summed over them. (Starting and stopping the
//! processes is `confab_testkit::desktop`'s.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One process's memory, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// Proportional set size: private pages plus a share of each shared page.
    pub(crate) pss_kib: u64,
    /// Resident set size: every resident page, shared ones counted in full.
    pub(crate) rss_kib: u64,
    /// Unique set size: private pages only (Private_Clean + Private_Dirty). File pages count
    /// as private only while no other process maps them, so this drops when other WebKit
    /// processes run on the machine.
    pub(crate) uss_kib: u64,
    /// Anonymous memory (heaps, JS, buffers): what the app itself allocated, independent of
    /// which libraries other processes on the machine share.
    pub(crate) anon_kib: u64,
}

/// Every process's parent, from `/proc/<pid>/stat`.
fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: the fields after the
        // last ')' are "state ppid ...".
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        {
            map.insert(pid, ppid);
        }
    }
    map
}

/// `root` and all its descendants.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        let mut kids: Vec<u32> = parents
            .iter()
            .filter(|(_, &pp)| pp == p)
            .map(|(&c, _)| c)
            .collect();
        kids.sort_unstable();
        found.extend(kids);
        i += 1;
    }
    found
}

/// The first descendant of `root` whose executable is `exe`.
pub(crate) fn find_descendant(root: u32, exe: &Path) -> Option<u32> {
    let want = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    tree(root)
        .into_iter()
        .skip(1)
        .find(|pid| exe_of(*pid).is_some_and(|e| e == want))
}

fn exe_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The short command name of `pid`.
pub(crate) fn name_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

/// PSS and RSS of one process (zero for a process that is gone or a kernel thread).
pub(crate) fn memory_of(pid: u32) -> Memory {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return Memory::default();
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        pss_kib: field("Pss:"),
        rss_kib: field("Rss:"),
        uss_kib: field("Private_Clean:") + field("Private_Dirty:"),
        anon_kib: field("Anonymous:"),
    }
}

/// Memory summed over `root` and its descendants, with the per-process figures.
pub(crate) fn tree_memory(root: u32) -> (Memory, Vec<(String, Memory)>) {
    let mut total = Memory::default();
    let mut each = Vec::new();
    for pid in tree(root) {
        let m = memory_of(pid);
        total.pss_kib += m.pss_kib;
        total.rss_kib += m.rss_kib;
        total.uss_kib += m.uss_kib;
        total.anon_kib += m.anon_kib;
        each.push((name_of(pid), m));
    }
    (total, each)
}
