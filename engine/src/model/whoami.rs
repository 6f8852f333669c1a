//! Who runs Cairn and where: recorded with every run.

/// The OS user (`$USER`, `$LOGNAME`, else the name of the process's uid in
/// `/etc/passwd`), or `unknown`.
pub fn user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(user_from_uid)
        .unwrap_or_else(|| "unknown".to_owned())
}

fn user_from_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id == uid).then(|| name.to_owned())
    })
}

/// The host name, or `unknown`.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether process `pid` is alive on this host. Where that cannot be told
/// (no `/proc`), assume it is, so a live run is never marked crashed.
///
/// `/proc/PID` alone is not enough: it also answers for a thread id (a
/// dead run's pid is soon reused as some thread's id: on a busy machine
/// with a small `pid_max` within seconds), and for a killed process its
/// parent has not reaped yet (a zombie). Alive is a process leader
/// (`Tgid` = `pid`) that is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    let Ok(status) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let leader = field("Tgid:").is_none_or(|tgid| tgid == pid.to_string());
    let gone = field("State:").is_some_and(|state| state.starts_with(['Z', 'X']));
    leader && !gone
}

#[cfg(test)]
mod tests {
    use super::process_alive;

    #[test]
    fn a_process_is_alive_but_not_a_thread_id_a_zombie_or_a_reaped_child() {
        assert!(process_alive(std::process::id()));

        // A thread's id has a /proc entry of its own, but is no process.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").unwrap_or_default();
            let tid = me
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok());
            let _ = tx.send(tid);
            let _ = done_rx.recv();
        });
        let tid: u32 = rx
            .recv()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no /proc/thread-self"));
        assert!(std::path::Path::new(&format!("/proc/{tid}")).exists());
        assert!(!process_alive(tid), "thread {tid} is not a process");
        let _ = done_tx.send(());
        let _ = thread.join();

        // A child that exited but is not reaped yet is a zombie: dead.
        let mut child = std::process::Command::new("true")
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!process_alive(pid), "an unreaped child that exited");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        let _ = child.wait();
        assert!(!process_alive(pid));
    }
}
