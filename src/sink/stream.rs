//! STREAM: stdout or stderr, one record per line. Accepted means written
//! and flushed; a closed pipe (`| head`) is an error, so the cursor does
//! not move past what the reader never got.

use super::SinkError;
use crate::cli::StreamKind;
use std::io::Write;

pub struct StreamSink {
    kind: StreamKind,
    buf: Vec<u8>,
}

impl StreamSink {
    pub fn new(kind: StreamKind) -> StreamSink {
        StreamSink {
            kind,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }

    pub fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.buf.extend_from_slice(frame);
        if self.buf.len() >= 64 * 1024 {
            self.write_out()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }

    fn write_out(&mut self) -> Result<(), SinkError> {
        let res = match self.kind {
            StreamKind::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&self.buf).and_then(|()| out.flush())
            }
            StreamKind::Stderr => {
                let mut out = std::io::stderr().lock();
                out.write_all(&self.buf).and_then(|()| out.flush())
            }
        };
        self.buf.clear();
        res.map_err(|e| SinkError::write(self.name(), e))
    }
}
