//! The answer cache: encoded UDP replies of the cluster zone, keyed by the request bytes after
//! the ID with the question name lowercased, valid for one index serial (any change to Services
//! or EndpointSlices empties it). A hit costs a hash lookup and a copy: the reply gets the
//! request's ID and the request's spelling of the question name (answers point at it, so the
//! case is echoed everywhere, as a fresh answer does).

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Offset of the question section in a DNS message.
const HEADER: usize = 12;

/// One cached reply.
#[derive(Debug, Clone)]
struct Cached {
    reply: Vec<u8>,
    qtype: Option<RecordType>,
    rcode: ResponseCode,
}

/// A cache hit: the reply to send, and what to record about it.
#[derive(Debug)]
pub struct Hit {
    pub reply: Vec<u8>,
    pub qtype: Option<RecordType>,
    pub rcode: ResponseCode,
}

/// Encoded replies for one index serial, at most `capacity` of them.
#[derive(Debug)]
pub struct AnswerCache {
    serial: u32,
    capacity: usize,
    entries: HashMap<Vec<u8>, Cached>,
}

/// The end of the uncompressed question name that starts at the header's end, or None when the
/// packet has no such question (compressed, truncated, or more than one question).
fn question_name_end(packet: &[u8]) -> Option<usize> {
    if packet.len() < HEADER || packet[4..6] != [0, 1] {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = *packet.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len > 63 {
            return None; // a pointer or an extended label type
        }
        at += 1 + len;
    }
}

/// The cache key of a request: everything after the ID, the question name lowercased.
fn key_of(packet: &[u8]) -> Option<(Vec<u8>, usize)> {
    let end = question_name_end(packet)?;
    let mut key = packet[2..].to_vec();
    // Label length bytes are at most 63, below 'A', so lowercasing the whole name is safe.
    key[HEADER - 2..end - 2].make_ascii_lowercase();
    Some((key, end))
}

impl AnswerCache {
    /// An empty cache holding at most `capacity` replies.
    pub fn new(capacity: usize) -> AnswerCache {
        AnswerCache {
            serial: 0,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// Replies cached now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn sync_serial(&mut self, serial: u32) {
        if serial != self.serial {
            self.entries.clear();
            self.serial = serial;
        }
    }

    /// The cached reply to `request` under index `serial`, with the request's ID and spelling.
    pub fn get(&mut self, serial: u32, request: &[u8]) -> Option<Hit> {
        self.sync_serial(serial);
        let (key, end) = key_of(request)?;
        let cached = self.entries.get(&key)?;
        let mut reply = cached.reply.clone();
        reply[..2].copy_from_slice(&request[..2]);
        reply[HEADER..end].copy_from_slice(&request[HEADER..end]);
        Some(Hit {
            reply,
            qtype: cached.qtype,
            rcode: cached.rcode,
        })
    }

    /// Remembers `reply` to `request` under index `serial`, when the reply repeats the request's
    /// question name at the same place (so a later hit can be re-spelled). A full cache is
    /// emptied first, which bounds its memory.
    pub fn insert(
        &mut self,
        serial: u32,
        request: &[u8],
        reply: &[u8],
        qtype: Option<RecordType>,
        rcode: ResponseCode,
    ) {
        self.sync_serial(serial);
        let Some((key, end)) = key_of(request) else {
            return;
        };
        if reply.len() < end || !reply[HEADER..end].eq_ignore_ascii_case(&request[HEADER..end]) {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Cached {
                reply: reply.to_vec(),
                qtype,
                rcode,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (type A) with `id`.
    fn query(id: u16, name: &str) -> Vec<u8> {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        p
    }

    /// A reply that repeats the question and has one answer pointing at it.
    fn reply_to(q: &[u8]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, 1]);
        r
    }

    #[test]
    fn hits_answer_with_the_request_id_and_spelling() {
        let mut cache = AnswerCache::new(10);
        let first = query(1, "web.default.svc.cluster.local");
        cache.insert(
            7,
            &first,
            &reply_to(&first),
            Some(RecordType::A),
            ResponseCode::NoError,
        );
        let second = query(2, "WeB.default.svc.cluster.local");
        let hit = cache.get(7, &second).expect("hit");
        assert_eq!(hit.reply, reply_to(&second));
        assert_eq!(hit.rcode, ResponseCode::NoError);
        assert_eq!(hit.qtype, Some(RecordType::A));
    }

    #[test]
    fn a_new_serial_empties_the_cache() {
        let mut cache = AnswerCache::new(10);
        let q = query(1, "web.default.svc.cluster.local");
        cache.insert(7, &q, &reply_to(&q), None, ResponseCode::NoError);
        assert!(cache.get(8, &q).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn different_requests_do_not_share_replies() {
        let mut cache = AnswerCache::new(10);
        let a = query(1, "a.default.svc.cluster.local");
        cache.insert(7, &a, &reply_to(&a), None, ResponseCode::NoError);
        assert!(cache
            .get(7, &query(1, "b.default.svc.cluster.local"))
            .is_none());
        // the same name without recursion desired is another request
        let mut no_rd = a.clone();
        no_rd[2] = 0;
        assert!(cache.get(7, &no_rd).is_none());
    }

    #[test]
    fn odd_packets_are_never_cached_and_the_size_is_bounded() {
        let mut cache = AnswerCache::new(2);
        // compressed question, truncated question, two questions
        let mut pointer = query(1, "a.b");
        pointer.truncate(HEADER);
        pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        cache.insert(1, &pointer, &pointer, None, ResponseCode::NoError);
        let truncated = &query(1, "abc.def")[..15];
        cache.insert(1, truncated, truncated, None, ResponseCode::NoError);
        let mut two = query(1, "a.b");
        two[5] = 2;
        cache.insert(1, &two, &reply_to(&two), None, ResponseCode::NoError);
        // a reply that does not repeat the question
        let q = query(1, "a.b");
        cache.insert(1, &q, &q[..HEADER], None, ResponseCode::FormErr);
        assert!(cache.is_empty());
        for name in ["a.x", "b.x", "c.x"] {
            let q = query(1, name);
            cache.insert(1, &q, &reply_to(&q), None, ResponseCode::NoError);
            assert!(cache.len() <= 2);
        }
    }
}
