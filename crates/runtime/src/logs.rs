//! Container logs in the CRI format (`<RFC3339Nano> <stream> <P|F> <content>`), with size
//! rotation (`log` → `log.1` → … `log.<max_files-1>`), written by the monitor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::util::{now_nanos, rfc3339_nanos};

/// Longest line chunk written as one record; longer lines become `P` records.
pub const MAX_LINE: usize = 16 * 1024;

/// A CRI log file writer.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: usize,
    partial: [Vec<u8>; 2],
}

/// The stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Stdout = 0,
    /// stderr.
    Stderr = 1,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl LogWriter {
    /// Opens (appending) `path`; rotates when it would exceed `max_size`.
    pub fn open(path: &Path, max_size: u64, max_files: usize) -> io::Result<Self> {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1024),
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files > 1 {
            for i in (1..self.max_files - 1).rev() {
                let from = PathBuf::from(format!("{}.{i}", self.path.display()));
                let to = PathBuf::from(format!("{}.{}", self.path.display(), i + 1));
                let _ = fs::rename(from, to);
            }
            fs::rename(&self.path, format!("{}.1", self.path.display()))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn record(&mut self, stream: Stream, tag: char, content: &[u8]) -> io::Result<()> {
        let mut line =
            format!("{} {} {tag} ", rfc3339_nanos(now_nanos()), stream.name()).into_bytes();
        line.extend_from_slice(content);
        line.push(b'\n');
        if self.size + line.len() as u64 > self.max_size && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Writes a chunk of output: each complete line becomes an `F` record, overlong pieces `P`.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.partial[stream as usize]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + nl];
            for (i, chunk) in line.chunks(MAX_LINE).enumerate() {
                let last = (i + 1) * MAX_LINE >= line.len();
                self.record(stream, if last { 'F' } else { 'P' }, chunk)?;
            }
            if line.is_empty() {
                self.record(stream, 'F', b"")?;
            }
            start += nl + 1;
        }
        let mut rest = buf[start..].to_vec();
        while rest.len() >= MAX_LINE {
            let chunk: Vec<u8> = rest.drain(..MAX_LINE).collect();
            self.record(stream, 'P', &chunk)?;
        }
        self.partial[stream as usize] = rest;
        Ok(())
    }

    /// Writes `stream`'s unterminated output now, as a partial (`P`) record: a terminal's
    /// prompt must reach the log (and `attach`) before its line ends.
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        self.write_pending(stream, 'P')
    }

    /// Flushes unterminated output as final records.
    pub fn finish(&mut self) -> io::Result<()> {
        for s in [Stream::Stdout, Stream::Stderr] {
            self.write_pending(s, 'F')?;
        }
        self.file.flush()
    }

    /// Writes `stream`'s unterminated output, if any, as one record tagged `tag`.
    fn write_pending(&mut self, stream: Stream, tag: char) -> io::Result<()> {
        let rest = std::mem::take(&mut self.partial[stream as usize]);
        if rest.is_empty() {
            return Ok(());
        }
        self.record(stream, tag, &rest)
    }
}

/// Reads a CRI log back as plain output lines (for `minirun logs`).
pub fn read_plain(path: &Path) -> io::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for i in (1..10).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    let mut pending = String::new();
    for f in files {
        for line in fs::read_to_string(&f).unwrap_or_default().lines() {
            let mut parts = line.splitn(4, ' ');
            let (Some(_ts), Some(stream), Some(tag), content) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next().unwrap_or(""),
            ) else {
                continue;
            };
            pending.push_str(content);
            if tag == "F" {
                out.push((stream.to_string(), std::mem::take(&mut pending)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_format_and_partials() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 1 << 20, 2).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 10]).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        w.finish().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(" stdout F hello"), "{}", lines[0]);
        assert_eq!(
            lines[0].len(),
            "2016-10-06T00:17:09.669794202Z stdout F hello".len()
        );
        assert!(lines[1].ends_with(" stderr F oops"));
        assert!(lines[2].contains(" stdout P wor"));
        assert!(lines[3].contains(" stdout F xxxxxxxxxx"));
        let plain = read_plain(&p).unwrap();
        assert_eq!(plain[0], ("stdout".into(), "hello".into()));
        assert_eq!(plain[2].1.len(), 3 + MAX_LINE + 10);
    }

    #[test]
    fn a_prompt_is_flushed_as_a_partial_record() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 1 << 20, 2).unwrap();
        w.write(Stream::Stdout, b"/ # ").unwrap();
        w.flush_partial(Stream::Stdout).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.ends_with(" stdout P / # \n"), "{text}");
        w.write(Stream::Stdout, b"echo\r\n").unwrap();
        w.flush_partial(Stream::Stdout).unwrap();
        w.finish().unwrap();
        let plain = read_plain(&p).unwrap();
        // Partial records join their line; a terminal's \r\n ends it like \n.
        assert_eq!(plain, vec![("stdout".into(), "/ # echo".into())]);
    }

    #[test]
    fn rotates_by_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 2048, 3).unwrap();
        for i in 0..200 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.finish().unwrap();
        assert!(fs::metadata(&p).unwrap().len() <= 2048);
        assert!(d.path().join("c.log.1").exists());
        assert!(d.path().join("c.log.2").exists());
        assert!(!d.path().join("c.log.3").exists());
        let last = read_plain(&p).unwrap();
        assert_eq!(last.last().unwrap().1, "line 199");
    }
}
