//! Records packed into message bodies: each body a JSON array of records, as ingest reads them.

/// One message body and how many records it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub body: String,
    pub records: u64,
}

/// Packs serialized records into bodies of at most `max_bytes`.
#[derive(Debug)]
pub struct Packer {
    max_bytes: usize,
    open: Vec<u8>,
    open_records: u64,
    ready: std::collections::VecDeque<Message>,
}

impl Packer {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            open: Vec::new(),
            open_records: 0,
            ready: std::collections::VecDeque::new(),
        }
    }

    /// The largest record that fits a body of its own (the array's brackets take two bytes).
    pub fn max_record_bytes(max_bytes: usize) -> usize {
        max_bytes.saturating_sub(2)
    }

    /// Adds one serialized record (a JSON object, at most [`Packer::max_record_bytes`]),
    /// closing the open body first if the record would not fit in it.
    pub fn push(&mut self, record: &[u8]) {
        if self.open_records > 0 && self.open.len() + 1 + record.len() + 1 > self.max_bytes {
            self.close();
        }
        self.open
            .push(if self.open_records == 0 { b'[' } else { b',' });
        self.open.extend_from_slice(record);
        self.open_records += 1;
    }

    /// Closes the open body, if any, making it ready.
    pub fn close(&mut self) {
        if self.open_records == 0 {
            return;
        }
        self.open.push(b']');
        let body = String::from_utf8(std::mem::take(&mut self.open))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.ready.push_back(Message {
            body,
            records: std::mem::take(&mut self.open_records),
        });
    }

    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    pub fn has_open(&self) -> bool {
        self.open_records > 0
    }

    /// Up to `n` ready bodies, oldest first.
    pub fn take(&mut self, n: usize) -> Vec<Message> {
        let n = n.min(self.ready.len());
        self.ready.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_packed_into_json_arrays_under_the_limit() {
        let mut p = Packer::new(64);
        let record = br#"{"decision_id":"d-0001","x":1}"#; // 30 bytes
        for _ in 0..5 {
            p.push(record);
        }
        p.close();
        let messages = p.take(10);
        assert_eq!(
            messages.iter().map(|m| m.records).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        for m in &messages {
            assert!(m.body.len() <= 64, "{}", m.body.len());
            let parsed: Vec<serde_json::Value> = serde_json::from_str(&m.body).unwrap();
            assert_eq!(parsed.len() as u64, m.records);
        }
        assert_eq!(Packer::max_record_bytes(64), 62);
        assert!(!p.has_open() && p.ready() == 0);
    }
}
