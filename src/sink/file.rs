//! FILE: one record per line, rolled over by size exactly as the original
//! agent (Python's RotatingFileHandler) does: before a record is written,
//! if the file is not empty and its size plus the record would reach
//! `max_bytes`, `name.(n-1)` becomes `name.n` ... `name` becomes `name.1`,
//! and a new `name` is started; the oldest beyond `backup_count` is
//! removed. With `max_bytes` or `backup_count` 0 the file is never rolled
//! over. Records are never split across files.
//!
//! The same writer serves the agent's own log file.

use crate::fsx::DeadlineWriter;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backup_count: u32,
    out: BufWriter<DeadlineWriter>,
    size: u64,
    /// Only regular files are rolled over (not /dev/stdout, a FIFO, ...).
    regular: bool,
}

/// Truncates a regular file that does not end with LF back to its last
/// LF; returns how many bytes went.
fn remove_partial_line(path: &Path) -> io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    // Only a regular file is repaired (opening a FIFO here would make it
    // see a writer come and go).
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let mut f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        // Missing, or not ours to repair (a device, no read permission...).
        Err(_) => return Ok(None),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    // Writers hold a shared lock while they write (see `SharedFile` and
    // the agent's log): a line another process is writing right now is
    // waited for, never taken for a partial one. (A file system without
    // locks: repaired as before.)
    let _ = f.lock();
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(None);
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            f.set_len(keep)?;
            f.sync_all()?;
            return Ok(Some(len - keep));
        }
        if start == 0 {
            f.set_len(0)?;
            f.sync_all()?;
            return Ok(Some(len));
        }
        end = start;
    }
}

impl RotatingFile {
    /// Opens `path` for appending (mode 640 when created). A partial last
    /// line, left by a run that was killed while writing it, is removed
    /// first: it was never confirmed, so the next run writes it again.
    pub fn open(path: &Path, max_bytes: u64, backup_count: u32) -> io::Result<RotatingFile> {
        if let Some(cut) = remove_partial_line(path)? {
            tracing::warn!(
                "{}: removed a partial last line ({cut} bytes) left by an interrupted run; it is written again",
                path.display()
            );
        }
        let file = open_append(path)?;
        let meta = file.metadata()?;
        let deadline = crate::sink::SEND_TIMEOUT;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            backup_count,
            size: meta.len(),
            regular: meta.is_file(),
            out: BufWriter::with_capacity(64 * 1024, DeadlineWriter { file, deadline }),
        })
    }

    /// Sets how long a write to a FIFO or device may make no progress.
    pub fn with_deadline(mut self, deadline: std::time::Duration) -> RotatingFile {
        self.out.get_mut().deadline = deadline;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one whole record (with its line end).
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        if self.should_roll_over(record.len() as u64) {
            self.roll_over()?;
        }
        self.out.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    /// Holds a shared lock on the file while `f` writes to it: a run
    /// opening the same file waits before repairing its last line (see
    /// `remove_partial_line`). Best effort: a file system without locks
    /// is written all the same.
    pub fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut RotatingFile) -> io::Result<T>,
    ) -> io::Result<T> {
        let locked = self.regular && self.out.get_ref().file.lock_shared().is_ok();
        let res = f(self);
        if locked {
            // After a rollover `file` is the new one: unlocking it is
            // harmless, and closing the old one let its lock go.
            let _ = self.out.get_ref().file.unlock();
        }
        res
    }

    /// Writes whole records, `records[..ends[0]]`, `records[ends[0]..ends[1]]`
    /// ...: at once when no rollover falls among them, else one by one.
    pub fn write_records(&mut self, records: &[u8], ends: &[usize]) -> io::Result<()> {
        let may_roll = self.regular && self.max_bytes > 0 && self.backup_count > 0;
        if !may_roll || self.size + records.len() as u64 <= self.max_bytes.saturating_sub(1) {
            self.out.write_all(records)?;
            self.size += records.len() as u64;
            return Ok(());
        }
        let mut start = 0;
        for &end in ends {
            self.write_record(&records[start..end])?;
            start = end;
        }
        Ok(())
    }

    /// Flushes what was written to the kernel.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and makes what was written durable (fsync; a FIFO or a
    /// device has nothing to make durable).
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.regular {
            self.out.get_ref().file.sync_data()?;
        }
        Ok(())
    }

    fn should_roll_over(&self, len: u64) -> bool {
        self.regular
            && self.max_bytes > 0
            && self.backup_count > 0
            && self.size > 0
            && self.size + len >= self.max_bytes
    }

    fn roll_over(&mut self) -> io::Result<()> {
        self.sync()?;
        for i in (1..self.backup_count).rev() {
            let from = self.backup(i);
            if from.exists() {
                std::fs::rename(&from, self.backup(i + 1))?;
            }
        }
        std::fs::rename(&self.path, self.backup(1))?;
        let file = open_append(&self.path)?;
        let deadline = self.out.get_ref().deadline;
        self.out = BufWriter::with_capacity(64 * 1024, DeadlineWriter { file, deadline });
        self.size = 0;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn backup(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

/// A FILE output as every destination of the process that names the same
/// file uses it: tenants of one run (`--config DIR`) writing to one file
/// share one writer, so that they never roll it over twice or cut each
/// other's last line. Each user gathers its records and hands them over
/// in batches on a blocking thread (a FIFO whose reader stalls, or a slow
/// fsync, holds up that user only, never the thread the run's tasks share;
/// a shared lock on the file meanwhile keeps another process's repair of
/// a last line from cutting a batch in flight);
/// a sync confirms every record written before it, whoever wrote it. Once
/// a write or a sync of the file has failed, it fails for every user: a
/// lost write cannot be confirmed by a later sync that happens to succeed.
#[derive(Debug)]
pub struct SharedFile {
    path: PathBuf,
    inner: Arc<Mutex<Shared>>,
    /// This user's records not yet handed over, and where each ends.
    pending: Vec<u8>,
    ends: Vec<usize>,
}

#[derive(Debug)]
struct Shared {
    file: RotatingFile,
    /// The first failure, repeated to every later call.
    failed: Option<(io::ErrorKind, String)>,
}

impl Shared {
    fn run<T>(&mut self, f: impl FnOnce(&mut RotatingFile) -> io::Result<T>) -> io::Result<T> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(
                *kind,
                format!("an earlier write to this file failed: {msg}"),
            ));
        }
        f(&mut self.file).inspect_err(|e| self.failed = Some((e.kind(), e.to_string())))
    }
}

type Registry = Mutex<Vec<(PathBuf, Weak<Mutex<Shared>>)>>;

fn registry() -> &'static Registry {
    static OPEN: OnceLock<Registry> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// The file's identity: its directory resolved, and its name.
fn identity(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// How many bytes a user gathers before handing them over (the run asks
/// for a sync after as many: see `Sink::flush_batch`).
const BATCH: usize = 256 * 1024;

impl SharedFile {
    /// The writer of `path` already open in this process, or a new one
    /// (see [`RotatingFile::open`]); the first opener's size limits
    /// apply.
    pub fn open(
        path: &Path,
        max_bytes: u64,
        backup_count: u32,
        deadline: std::time::Duration,
    ) -> io::Result<SharedFile> {
        let id = identity(path);
        let mut open = registry().lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(_, w)| w.strong_count() > 0);
        let inner = match open
            .iter()
            .find(|(p, _)| *p == id)
            .and_then(|(_, w)| w.upgrade())
        {
            Some(inner) => inner,
            None => {
                let file =
                    RotatingFile::open(path, max_bytes, backup_count)?.with_deadline(deadline);
                let inner = Arc::new(Mutex::new(Shared { file, failed: None }));
                open.push((id, Arc::downgrade(&inner)));
                inner
            }
        };
        Ok(SharedFile {
            path: path.to_path_buf(),
            inner,
            pending: Vec::with_capacity(BATCH + 4096),
            ends: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes one whole record (with its line end); hands a full batch
    /// over.
    pub async fn send(&mut self, record: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(record);
        self.ends.push(self.pending.len());
        if self.pending.len() >= BATCH {
            self.hand_over(false).await?;
        }
        Ok(())
    }

    /// Hands every record over and makes what the file holds durable (see
    /// [`RotatingFile::sync`]).
    pub async fn sync(&mut self) -> io::Result<()> {
        self.hand_over(true).await
    }

    /// Writes this user's records, each whole, then syncs if asked, on a
    /// blocking thread; no progress for the deadline is an error.
    async fn hand_over(&mut self, sync: bool) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut ends = std::mem::take(&mut self.ends);
        let inner = self.inner.clone();
        // No deadline around the whole hand-over: a slow reader that keeps
        // reading is not an error, and waiting for another tenant's turn
        // is not lack of progress. A write that makes no progress for the
        // deadline fails inside (`DeadlineWriter`); the process waits for
        // a hand-over in flight before it exits (main.rs), so that a
        // record is never cut.
        let task = tokio::task::spawn_blocking(move || {
            let mut shared = inner.lock().unwrap_or_else(|e| e.into_inner());
            let res = shared.run(|f| {
                f.locked(|f| {
                    f.write_records(&pending, &ends)?;
                    if sync { f.sync() } else { Ok(()) }
                })
            });
            pending.clear();
            ends.clear();
            (pending, ends, res)
        });
        let (pending, ends, res) = task.await.map_err(io::Error::other)?;
        self.pending = pending;
        self.ends = ends;
        res
    }
}

/// Opens for appending (mode 640 when created): never through a symbolic
/// link, except one to a device or FIFO (`/dev/stdout`).
fn open_append(path: &Path) -> io::Result<File> {
    crate::fsx::open_write(path, true, 0o640, crate::fsx::Kind::RegularOrStream)
}

#[cfg(test)]
mod partial_line_tests {
    use super::*;

    #[test]
    fn a_partial_last_line_is_removed_whole_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        for (before, after) in [
            ("a\nb\npart", "a\nb\n"),
            ("a\nb\n", "a\nb\n"),
            ("part", ""),
            ("", ""),
        ] {
            std::fs::write(&p, before).unwrap();
            let mut f = RotatingFile::open(&p, 0, 0).unwrap();
            f.write_record(b"c\n").unwrap();
            f.sync().unwrap();
            assert_eq!(
                std::fs::read_to_string(&p).unwrap(),
                format!("{after}c\n"),
                "{before:?}"
            );
        }
        // A long partial line (longer than one read chunk).
        let long = format!("x\n{}", "y".repeat(200_000));
        std::fs::write(&p, &long).unwrap();
        drop(RotatingFile::open(&p, 0, 0).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(dir: &Path, name: &str, backups: u32) -> Vec<Option<u64>> {
        let mut v = vec![std::fs::metadata(dir.join(name)).ok().map(|m| m.len())];
        for i in 1..=backups + 1 {
            v.push(
                std::fs::metadata(dir.join(format!("{name}.{i}")))
                    .ok()
                    .map(|m| m.len()),
            );
        }
        v
    }

    #[test]
    fn rolls_over_before_reaching_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut f = RotatingFile::open(&path, 25, 2).unwrap();
        for i in 0..7 {
            f.write_record(format!("record-{i}\n").as_bytes()).unwrap(); // 9 bytes each
        }
        f.sync().unwrap();
        // 9+9=18, +9=27>=25 -> roll: each file holds two records.
        assert_eq!(
            sizes(dir.path(), "out.log", 2),
            vec![Some(9), Some(18), Some(18), None]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "record-6\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.log.1")).unwrap(),
            "record-4\nrecord-5\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.log.2")).unwrap(),
            "record-2\nrecord-3\n"
        );
    }

    #[test]
    fn zero_means_never() {
        for (max, count) in [(0, 3), (10, 0)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("o");
            let mut f = RotatingFile::open(&path, max, count).unwrap();
            for _ in 0..10 {
                f.write_record(b"0123456789\n").unwrap();
            }
            f.sync().unwrap();
            assert_eq!(sizes(dir.path(), "o", 1), vec![Some(110), None, None]);
        }
    }

    #[test]
    fn a_record_larger_than_max_bytes_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        let mut f = RotatingFile::open(&path, 10, 5).unwrap();
        f.write_record(b"0123456789abcdef\n").unwrap();
        f.write_record(b"x\n").unwrap();
        f.sync().unwrap();
        assert_eq!(sizes(dir.path(), "o", 1), vec![Some(2), Some(17), None]);
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        std::fs::write(&path, "123456789\n").unwrap();
        let mut f = RotatingFile::open(&path, 15, 1).unwrap();
        f.write_record(b"abcde\n").unwrap();
        f.sync().unwrap();
        assert_eq!(sizes(dir.path(), "o", 1), vec![Some(6), Some(10), None]);
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[tokio::test]
    async fn two_openers_of_one_file_share_one_writer_and_its_rollover() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let t = std::time::Duration::from_secs(5);
        let mut a = SharedFile::open(&path, 100, 3, t).unwrap();
        // The same file by another spelling of its path.
        let other = d.path().join(".").join("out.log");
        let mut b = SharedFile::open(&other, 100, 3, t).unwrap();
        for i in 0..20 {
            let w = if i % 2 == 0 { &mut a } else { &mut b };
            w.send(format!("record {i:02} of twenty\n").as_bytes())
                .await
                .unwrap();
            // Handed over one at a time, in this order.
            w.sync().await.unwrap();
        }
        let mut lines = Vec::new();
        for name in ["out.log.3", "out.log.2", "out.log.1", "out.log"] {
            let text = std::fs::read_to_string(d.path().join(name)).unwrap();
            assert!(text.len() < 100, "{name}: {}", text.len());
            lines.extend(text.lines().map(str::to_string));
        }
        // One writer rolled over: the newest 4 files hold the last
        // records in order, none cut, none twice.
        let n = lines.len();
        let expected: Vec<String> = (20 - n..20)
            .map(|i| format!("record {i:02} of twenty"))
            .collect();
        assert_eq!(lines, expected);
        drop((a, b));
        // Closed by both: a new opener starts a new writer.
        let mut c = SharedFile::open(&path, 100, 3, t).unwrap();
        c.send(b"again\n").await.unwrap();
        c.sync().await.unwrap();
    }

    #[test]
    fn records_written_together_roll_over_as_one_by_one() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let mut f = RotatingFile::open(&path, 30, 5).unwrap();
        // Three of 12 bytes into an empty file of at most 30: two, then one.
        let recs = b"record 0001\nrecord 0002\nrecord 0003\n";
        f.write_records(recs, &[12, 24, 36]).unwrap();
        // Two more that fit beside it: written at once.
        f.write_records(b"ab\ncd\n", &[3, 6]).unwrap();
        f.sync().unwrap();
        let read = |n: &str| std::fs::read_to_string(d.path().join(n)).unwrap();
        assert_eq!(read("out.log.1"), "record 0001\nrecord 0002\n");
        assert_eq!(read("out.log"), "record 0003\nab\ncd\n");
    }

    #[test]
    fn a_repair_waits_for_a_writer_in_the_middle_of_a_line() {
        use std::io::Write as _;
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        // Another run's writer, in the middle of a line, holding its lock.
        std::fs::write(&path, b"whole\npart").unwrap();
        let writer = OpenOptions::new().append(true).open(&path).unwrap();
        writer.lock_shared().unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        let p = path.clone();
        let opener = std::thread::spawn(move || RotatingFile::open(&p, 0, 0).map(|_| ()));
        // Ready when the opener waits for the lock (a blocked request,
        // `->`, on this file in /proc/locks).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("->") && l.contains(&format!(":{ino} ")))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the opener never waited"
            );
            std::thread::yield_now();
        }
        (&writer).write_all(b"ial\n").unwrap();
        writer.unlock().unwrap();
        opener.join().unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "whole\npartial\n");
    }

    #[tokio::test]
    async fn a_failure_is_every_user_s() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let t = std::time::Duration::from_secs(5);
        let mut a = SharedFile::open(&path, 0, 0, t).unwrap();
        let mut b = SharedFile::open(&path, 0, 0, t).unwrap();
        a.inner.lock().unwrap().failed = Some((io::ErrorKind::Other, "disk on fire".into()));
        b.send(b"x\n").await.unwrap();
        let e = b.sync().await.unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
        assert!(a.sync().await.is_err());
    }
}
