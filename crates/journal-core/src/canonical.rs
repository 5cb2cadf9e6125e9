//! Canonical JSON bytes (RFC 8785, JSON Canonicalization Scheme).
//!
//! Every hash and MAC in the journal is taken over these bytes, so one record has exactly one
//! serialization: object members sorted by the UTF-16 code units of their names, no insignificant
//! white space, strings with the minimal escaping of RFC 8785 §3.2.2.2, numbers formatted as
//! ECMAScript's `Number.prototype.toString` does (via `ryu-js`).
//!
//! Numbers must be I-JSON (RFC 7493): integers beyond ±2^53 cannot be represented exactly as an
//! IEEE double and are refused rather than silently rounded, and so are NaN and the infinities.
//!
//! Any `Serialize` value is written directly (no intermediate `serde_json::Value`), with the
//! shape `serde_json::to_value` would give it: structs and maps are objects, sequences, tuples
//! and bytes are arrays, `None` and unit are `null`, enum variants are externally tagged. Each
//! object's members are serialized in the order they come and then reordered in place.
//!
//! Records, which every ingest, verification and compaction serializes, have a writer of their
//! own that writes members already in order ([`crate::record::Record::canonical_bytes`]); it
//! gives these same bytes and is tested against this writer. So do their JSON parts
//! ([`write_value`], [`write_map`]): a direct walk writes them, falling back to this writer for
//! what it is not sure of.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::{self, Display, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use serde::ser::{self, Serialize};
use serde_json::{Map, Number, Value};

/// The largest integer an IEEE double holds exactly (2^53).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_992;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("{path}: integer {value} is outside ±2^53 and cannot be represented exactly")]
    UnsafeInteger { path: String, value: String },
    #[error("{path}: number is not finite")]
    NonFinite { path: String },
    /// The value has no JSON form (a map key that is not a string, a raw JSON value, or an
    /// error raised by its own `Serialize` implementation).
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
}

mod json_value;

/// Serializes `value` to its RFC 8785 canonical bytes.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Canonical bytes of a JSON object given as its map (no need to wrap it in a `Value`).
pub fn map_to_vec(map: &Map<String, Value>) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_map(map, &mut out)?;
    Ok(out)
}

/// Appends the canonical bytes of a JSON value: the bytes and errors of [`write_of`], mostly
/// written by a direct walk (module `json_value`). On error, `out` keeps its previous contents.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    fast_or_generic(value, out, |v, out| json_value::value(v, out, 0))
}

/// [`write_value`] for an object given as its map.
pub fn write_map(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    fast_or_generic(map, out, |m, out| json_value::object(m, out, 0))
}

/// What a writer made for one shape leaves to the generic writer, which then writes it or says
/// why it cannot.
pub(crate) struct Declined;

/// Appends `value` through `fast`, or, where that declines, through the generic writer (which
/// leaves `out` as it was on error).
pub(crate) fn fast_or_generic<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    fast: impl FnOnce(&T, &mut Vec<u8>) -> Result<(), Declined>,
) -> Result<(), CanonicalError> {
    let len = out.len();
    fast(value, out).or_else(|Declined| {
        out.truncate(len);
        write_of(value, out)
    })
}

/// Canonical bytes of any serializable value: the same bytes as
/// `to_vec(&serde_json::to_value(value)?)`, except that non-finite floats are refused (where
/// `to_value` would silently turn them into `null`).
pub fn to_vec_of<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    write_of(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical bytes of `value` to `out`. On error, `out` keeps its previous contents.
pub fn write_of<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write_marked(value, out, None).map(|_| ())
}

/// Canonical bytes of `value`, an object, together with the range of those bytes that holds its
/// top-level member `name` and one adjacent comma (`None` when there is no such member).
///
/// Cutting that range out leaves exactly the canonical bytes of the object without the member,
/// so one serialization yields both forms (e.g. a record with and without `received_at`).
pub fn to_vec_with_member<T: Serialize + ?Sized>(
    value: &T,
    name: &str,
) -> Result<(Vec<u8>, Option<Range<usize>>), CanonicalError> {
    let mut out = Vec::with_capacity(1024);
    let span = write_marked(value, &mut out, Some(name))?;
    Ok((out, span))
}

fn write_marked<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    mark: Option<&str>,
) -> Result<Option<Range<usize>>, CanonicalError> {
    let len = out.len();
    let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let mut writer = Writer {
        out: &mut *out,
        scratch: &mut scratch,
        depth: 0,
        mark,
        marked: None,
    };
    let result = value.serialize(&mut writer);
    let marked = writer.marked.take();
    scratch.clear();
    SCRATCH.with(|s| *s.borrow_mut() = scratch);
    match result {
        Ok(()) => Ok(marked),
        Err(e) => {
            out.truncate(len);
            Err(e.into_canonical(""))
        }
    }
}

/// Checks that every number in `value` can be canonicalized; returns the first offending path.
pub fn check_numbers(value: &Value, path: &str) -> Result<(), CanonicalError> {
    check_value(value).map_err(|e| e.into_canonical(path))
}

/// [`check_numbers`] for a JSON object given as its map.
pub fn check_map_numbers(map: &Map<String, Value>, path: &str) -> Result<(), CanonicalError> {
    check_map(map).map_err(|e| e.into_canonical(path))
}

fn check_value(value: &Value) -> Result<(), Error> {
    match value {
        Value::Number(n) => check_number(n),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(v).map_err(|e| e.at_index(i))),
        Value::Object(map) => check_map(map),
        _ => Ok(()),
    }
}

fn check_map(map: &Map<String, Value>) -> Result<(), Error> {
    map.iter()
        .try_for_each(|(k, v)| check_value(v).map_err(|e| e.at_key(k)))
}

fn check_number(n: &Number) -> Result<(), Error> {
    if let Some(u) = n.as_u64() {
        return safe_u64(u).map(|_| ());
    }
    if let Some(i) = n.as_i64() {
        return safe_i64(i).map(|_| ());
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => Ok(()),
        _ => Err(Error::new(ErrorKind::NonFinite)),
    }
}

fn safe_u64(u: u64) -> Result<u64, Error> {
    if u > MAX_SAFE_INTEGER {
        return Err(Error::new(ErrorKind::UnsafeInteger(u.to_string())));
    }
    Ok(u)
}

fn safe_i64(i: i64) -> Result<i64, Error> {
    if i.unsigned_abs() > MAX_SAFE_INTEGER {
        return Err(Error::new(ErrorKind::UnsafeInteger(i.to_string())));
    }
    Ok(i)
}

// ---------------------------------------------------------------------------------------------
// Errors: the path is collected while the error propagates out, so success costs nothing.

#[derive(Debug)]
enum ErrorKind {
    UnsafeInteger(String),
    NonFinite,
    Unsupported(String),
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug)]
struct Error {
    kind: ErrorKind,
    /// Innermost segment first.
    path: Vec<Segment>,
}

impl Error {
    fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            path: Vec::new(),
        }
    }

    fn unsupported(reason: &str) -> Self {
        Self::new(ErrorKind::Unsupported(reason.to_string()))
    }

    fn at_key(mut self, key: &str) -> Self {
        self.path.push(Segment::Key(key.to_string()));
        self
    }

    fn at_index(mut self, index: usize) -> Self {
        self.path.push(Segment::Index(index));
        self
    }

    /// Path syntax: `a.b[2].c`, after `prefix` (joined with a dot when both are non-empty).
    fn into_canonical(self, prefix: &str) -> CanonicalError {
        let mut path = prefix.to_string();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Segment::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        match self.kind {
            ErrorKind::UnsafeInteger(value) => CanonicalError::UnsafeInteger { path, value },
            ErrorKind::NonFinite => CanonicalError::NonFinite { path },
            ErrorKind::Unsupported(reason) => CanonicalError::Unsupported { path, reason },
        }
    }
}

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnsafeInteger(v) => write!(f, "integer {v} is outside ±2^53"),
            ErrorKind::NonFinite => f.write_str("number is not finite"),
            ErrorKind::Unsupported(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Self::new(ErrorKind::Unsupported(msg.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// The writer.

/// A member name: a struct field's own `&'static str`, or a map key copied to `Scratch::keys`.
#[derive(Clone, Copy)]
enum Name {
    Field(&'static str),
    Key {
        start: usize,
        end: usize,
        /// The key is all ASCII.
        ascii: bool,
    },
}

impl Name {
    fn bytes<'k>(&self, keys: &'k [u8]) -> &'k [u8] {
        match *self {
            Name::Field(name) => name.as_bytes(),
            Name::Key { start, end, .. } => &keys[start..end],
        }
    }

    /// All ASCII (then byte order is UTF-16 order against any other name).
    fn is_ascii(&self) -> bool {
        match *self {
            Name::Field(name) => name.is_ascii(),
            Name::Key { ascii, .. } => ascii,
        }
    }

    /// Identity of a field name (the same static string, at the same address).
    fn field_id(&self) -> FieldId {
        match *self {
            Name::Field(name) => (name.as_ptr() as usize, name.len()),
            Name::Key { .. } => (0, 0),
        }
    }
}

/// Address and length of a struct field's name.
type FieldId = (usize, usize);

/// One member of an object being written: its name and its bytes `"name":value` in the output.
#[derive(Clone, Copy)]
struct Member {
    name: Name,
    start: usize,
    end: usize,
}

/// The order to write an object's members in: indexes into its members, in sorted order with
/// repeated names dropped (the later one wins); `None` when that is the order they came in.
type MemberOrder = Option<Box<[u32]>>;

/// Most distinct struct shapes (sequences of field names) whose order is remembered.
const MAX_CACHED_ORDERS: usize = 1024;

/// Buffers reused across calls (per thread), used as stacks by nested objects.
#[derive(Default)]
struct Scratch {
    /// Raw (unescaped) map keys of the objects being written.
    keys: Vec<u8>,
    /// Members of the objects being written, innermost object last.
    members: Vec<Member>,
    /// Copy of one object's member bytes while they are reordered.
    reorder: Vec<u8>,
    /// `Display` output of `collect_str` values.
    text: String,
    /// Field identities of the struct being finished (the key of `shapes`).
    shape: Vec<FieldId>,
    /// Member order by struct shape (index into `orders`): a struct with the same fields
    /// present sorts the same way every time, so it is sorted once.
    shapes: HashMap<Box<[FieldId]>, usize, BuildHasherDefault<ShapeHasher>>,
    orders: Vec<MemberOrder>,
}

/// Buffer capacity kept between calls; a larger one (after an unusually large value) is freed.
const KEPT_CAPACITY: usize = 64 * 1024;

impl Scratch {
    fn clear(&mut self) {
        fn reset<T>(buffer: &mut Vec<T>) {
            buffer.clear();
            if buffer.capacity() * std::mem::size_of::<T>() > KEPT_CAPACITY {
                *buffer = Vec::new();
            }
        }
        reset(&mut self.keys);
        reset(&mut self.members);
        reset(&mut self.reorder);
        reset(&mut self.shape);
        self.text.clear();
        if self.text.capacity() > KEPT_CAPACITY {
            self.text = String::new();
        }
    }
}

/// A cheap multiplicative hasher for shapes (addresses and lengths of static strings).
#[derive(Default)]
struct ShapeHasher(u64);

impl Hasher for ShapeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    /// Objects currently open (1 inside the top-level object).
    depth: usize,
    /// Top-level member whose bytes (with one adjacent comma) are to be located.
    mark: Option<&'a str>,
    marked: Option<Range<usize>>,
}

impl<'a> Writer<'a> {
    fn write_u64(&mut self, u: u64) -> Result<(), Error> {
        write_decimal(safe_u64(u)?, false, self.out);
        Ok(())
    }

    fn write_i64(&mut self, i: i64) -> Result<(), Error> {
        write_decimal(safe_i64(i)?.unsigned_abs(), i < 0, self.out);
        Ok(())
    }

    fn write_f64(&mut self, f: f64) -> Result<(), Error> {
        if write_finite_f64(f, self.out) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::NonFinite))
        }
    }

    fn begin_object(&mut self, variant: Option<&'static str>, fields: bool) -> Object<'_, 'a> {
        if let Some(v) = variant {
            // Externally tagged: {"Variant":{...}}.
            self.out.push(b'{');
            write_string(v, self.out);
            self.out.push(b':');
        }
        self.out.push(b'{');
        self.depth += 1;
        Object {
            start: self.out.len(),
            first_member: self.scratch.members.len(),
            keys_base: self.scratch.keys.len(),
            pending: None,
            variant,
            fields,
            w: self,
        }
    }

    fn begin_array(&mut self, variant: Option<&'static str>) -> Array<'_, 'a> {
        if let Some(v) = variant {
            self.out.push(b'{');
            write_string(v, self.out);
            self.out.push(b':');
        }
        self.out.push(b'[');
        Array {
            w: self,
            index: 0,
            variant,
        }
    }
}

/// Appends the canonical text of a finite `f` and returns true; returns false (and appends
/// nothing) for NaN and the infinities.
pub(crate) fn write_finite_f64(f: f64, out: &mut Vec<u8>) -> bool {
    if !f.is_finite() {
        return false;
    }
    if f == 0.0 {
        // -0 serializes as 0 (RFC 8785 §3.2.2.3).
        out.push(b'0');
    } else {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(f).as_bytes());
    }
    true
}

/// Appends the decimal digits of `n` (with a leading minus when `negative`).
pub(crate) fn write_decimal(mut n: u64, negative: bool, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// RFC 8785 §3.2.3: member names sort by their UTF-16 code units. That is UTF-8 byte order
/// except for characters outside the Basic Multilingual Plane against U+E000..U+FFFF, which can
/// only matter where both strings have a non-ASCII byte at the first difference.
fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some(i) if a[i] < 0x80 || b[i] < 0x80 => a[i].cmp(&b[i]),
        Some(_) => {
            let (a, b) = (utf8(a), utf8(b));
            a.encode_utf16().cmp(b.encode_utf16())
        }
    }
}

/// The bytes to cut to remove the member at `member`: with the comma before it, or else the one
/// after it.
fn member_span(member: Range<usize>, first: bool, last: bool) -> Range<usize> {
    match (first, last) {
        (false, _) => member.start - 1..member.end,
        (true, false) => member.start..member.end + 1,
        (true, true) => member,
    }
}

/// Name order of two members (RFC 8785 §3.2.3).
fn cmp_members(keys: &[u8], a: &Member, b: &Member) -> Ordering {
    let (x, y) = (a.name.bytes(keys), b.name.bytes(keys));
    if a.name.is_ascii() || b.name.is_ascii() {
        x.cmp(y)
    } else {
        cmp_keys(x, y)
    }
}

/// The order to write `members` in (see [`MemberOrder`]).
fn member_order(keys: &[u8], members: &[Member]) -> MemberOrder {
    if members
        .windows(2)
        .all(|p| cmp_members(keys, &p[0], &p[1]) == Ordering::Less)
    {
        return None;
    }
    let mut sorted: Vec<u32> = (0..members.len() as u32).collect();
    // Stable, so of two equal names the later one stays later.
    sorted.sort_by(|&a, &b| cmp_members(keys, &members[a as usize], &members[b as usize]));
    let name = |i: u32| members[i as usize].name.bytes(keys);
    let mut order = Vec::with_capacity(sorted.len());
    for (j, &i) in sorted.iter().enumerate() {
        if sorted.get(j + 1).is_some_and(|&next| name(next) == name(i)) {
            continue;
        }
        order.push(i);
    }
    Some(order.into_boxed_slice())
}

fn utf8(bytes: &[u8]) -> &str {
    // Map keys are copied from `&str`s whole, so they are always valid UTF-8.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A member whose `"name":` is written but whose value is not yet.
#[derive(Clone, Copy)]
struct PendingMember {
    name: Name,
    start: usize,
}

/// An object being written. Members go to the output in the order they come, separated by
/// commas; `end` reorders them by name when they are not already in order.
struct Object<'w, 'a> {
    w: &'w mut Writer<'a>,
    /// Output position just after `{`.
    start: usize,
    /// This object's members are `scratch.members[first_member..]`.
    first_member: usize,
    keys_base: usize,
    /// Map entry whose key is written but whose value is not.
    pending: Option<PendingMember>,
    variant: Option<&'static str>,
    /// A struct (names are static field names) rather than a map.
    fields: bool,
}

impl Object<'_, '_> {
    /// Writes `"name":` (after a comma when needed).
    fn begin_member(&mut self, name: &str) -> usize {
        let w = &mut *self.w;
        if w.scratch.members.len() > self.first_member {
            w.out.push(b',');
        }
        let start = w.out.len();
        write_string(name, w.out);
        w.out.push(b':');
        start
    }

    fn begin_field(&mut self, name: &'static str) -> PendingMember {
        PendingMember {
            start: self.begin_member(name),
            name: Name::Field(name),
        }
    }

    fn begin_key(&mut self, key: &str) -> PendingMember {
        let start = self.begin_member(key);
        let keys = &mut self.w.scratch.keys;
        let key_start = keys.len();
        keys.extend_from_slice(key.as_bytes());
        PendingMember {
            start,
            name: Name::Key {
                start: key_start,
                end: keys.len(),
                ascii: key.is_ascii(),
            },
        }
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        member: PendingMember,
        value: &T,
    ) -> Result<(), Error> {
        if let Err(e) = value.serialize(&mut *self.w) {
            let key = utf8(member.name.bytes(&self.w.scratch.keys)).to_string();
            return Err(self.wrap(e.at_key(&key)));
        }
        self.w.scratch.members.push(Member {
            name: member.name,
            start: member.start,
            end: self.w.out.len(),
        });
        Ok(())
    }

    fn wrap(&self, e: Error) -> Error {
        match self.variant {
            Some(v) => e.at_key(v),
            None => e,
        }
    }

    fn end(self) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::unsupported("map key without a value"));
        }
        let Writer {
            out,
            scratch,
            depth,
            mark,
            marked,
        } = &mut *self.w;
        *depth -= 1;
        let mark = mark.filter(|_| *depth == 0).map(str::as_bytes);
        let Scratch {
            keys,
            members,
            reorder,
            shape,
            shapes,
            orders,
            ..
        } = &mut **scratch;
        let object = &members[self.first_member..];
        let computed;
        let order = if self.fields && object.len() > 1 {
            shape.clear();
            shape.extend(object.iter().map(|m| m.name.field_id()));
            let known = shapes.get(&shape[..]).copied();
            let index = known.unwrap_or_else(|| {
                if orders.len() >= MAX_CACHED_ORDERS {
                    shapes.clear();
                    orders.clear();
                }
                orders.push(member_order(keys, object));
                shapes.insert(shape[..].into(), orders.len() - 1);
                orders.len() - 1
            });
            orders[index].as_deref()
        } else {
            computed = member_order(keys, object);
            computed.as_deref()
        };
        let name = |m: &Member| m.name.bytes(keys);
        match order {
            None => {
                let found = mark.and_then(|mark| object.iter().position(|m| name(m) == mark));
                if let Some(i) = found {
                    let m = &object[i];
                    *marked = Some(member_span(m.start..m.end, i == 0, i + 1 == object.len()));
                }
            }
            Some(order) => {
                reorder.clear();
                reorder.extend_from_slice(&out[self.start..]);
                out.truncate(self.start);
                for (j, &i) in order.iter().enumerate() {
                    let m = &object[i as usize];
                    if j > 0 {
                        out.push(b',');
                    }
                    let at = out.len();
                    out.extend_from_slice(&reorder[m.start - self.start..m.end - self.start]);
                    if mark == Some(name(m)) {
                        *marked = Some(member_span(at..out.len(), j == 0, j + 1 == order.len()));
                    }
                }
            }
        }
        members.truncate(self.first_member);
        keys.truncate(self.keys_base);
        out.push(b'}');
        if self.variant.is_some() {
            out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let member = self.begin_field(key);
        self.value(member, value)
    }

    fn end(self) -> Result<(), Error> {
        Object::end(self)
    }
}

impl ser::SerializeStructVariant for Object<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let member = self.begin_field(key);
        self.value(member, value)
    }

    fn end(self) -> Result<(), Error> {
        Object::end(self)
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::unsupported("map key without a value"));
        }
        let text = std::mem::take(&mut self.w.scratch.text);
        let key_text = key.serialize(KeyText(text));
        let text = match key_text {
            Ok(t) => t,
            Err(e) => return Err(self.wrap(e)),
        };
        self.pending = Some(self.begin_key(&text));
        self.w.scratch.text = text;
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let member = self
            .pending
            .take()
            .ok_or_else(|| Error::unsupported("map value without a key"))?;
        self.value(member, value)
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Error> {
        self.serialize_key(key)?;
        self.serialize_value(value)
    }

    fn end(self) -> Result<(), Error> {
        Object::end(self)
    }
}

/// An array being written.
struct Array<'w, 'a> {
    w: &'w mut Writer<'a>,
    index: usize,
    variant: Option<&'static str>,
}

impl Array<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.index > 0 {
            self.w.out.push(b',');
        }
        if let Err(e) = value.serialize(&mut *self.w) {
            let e = e.at_index(self.index);
            return Err(match self.variant {
                Some(v) => e.at_key(v),
                None => e,
            });
        }
        self.index += 1;
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        self.w.out.push(b']');
        if self.variant.is_some() {
            self.w.out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Array<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Array<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Array<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Array<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'w, 'a>;
    type SerializeTuple = Array<'w, 'a>;
    type SerializeTupleStruct = Array<'w, 'a>;
    type SerializeTupleVariant = Array<'w, 'a>;
    type SerializeMap = Object<'w, 'a>;
    type SerializeStruct = Object<'w, 'a>;
    type SerializeStructVariant = Object<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.write_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.write_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.write_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.write_i64(v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        match i64::try_from(v) {
            Ok(i) => self.write_i64(i),
            Err(_) => Err(Error::new(ErrorKind::UnsafeInteger(v.to_string()))),
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.write_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.write_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.write_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.write_u64(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => self.write_u64(u),
            Err(_) => Err(Error::new(ErrorKind::UnsafeInteger(v.to_string()))),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.write_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.write_f64(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_string(v.encode_utf8(&mut [0u8; 4]), self.out);
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(v, self.out);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.push(b'[');
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_decimal(u64::from(*b), false, self.out);
        }
        self.out.push(b']');
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_string(variant, self.out);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        value.serialize(&mut *self).map_err(|e| e.at_key(variant))?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'w, 'a>, Error> {
        Ok(self.begin_array(None))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Array<'w, 'a>, Error> {
        Ok(self.begin_array(None))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Array<'w, 'a>, Error> {
        Ok(self.begin_array(None))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'w, 'a>, Error> {
        Ok(self.begin_array(Some(variant)))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'w, 'a>, Error> {
        Ok(self.begin_object(None, false))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Object<'w, 'a>, Error> {
        if name.starts_with("$serde_json::private::") {
            // serde_json's RawValue (or an arbitrary-precision Number) in disguise.
            return Err(Error::unsupported(
                "raw JSON values cannot be canonicalized",
            ));
        }
        Ok(self.begin_object(None, true))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'w, 'a>, Error> {
        Ok(self.begin_object(Some(variant), true))
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        let mut text = std::mem::take(&mut self.scratch.text);
        text.clear();
        write!(text, "{value}").map_err(|_| Error::unsupported("Display failed"))?;
        write_string(&text, self.out);
        self.scratch.text = text;
        Ok(())
    }
}

/// Serializes a map key to its text (reusing the given buffer), as `serde_json` accepts keys:
/// strings, characters, integers, booleans and unit variants.
struct KeyText(String);

impl KeyText {
    fn text(mut self, s: &str) -> Result<String, Error> {
        self.0.clear();
        self.0.push_str(s);
        Ok(self.0)
    }

    fn display(mut self, v: impl Display) -> Result<String, Error> {
        self.0.clear();
        let _ = write!(self.0, "{v}");
        Ok(self.0)
    }
}

fn key_must_be_a_string() -> Error {
    Error::unsupported("object key must be a string")
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        self.text(v)
    }

    fn serialize_char(self, v: char) -> Result<String, Error> {
        self.text(v.encode_utf8(&mut [0u8; 4]))
    }

    fn serialize_bool(self, v: bool) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_i128(self, v: i128) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_u128(self, v: u128) -> Result<String, Error> {
        self.display(v)
    }

    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        self.text(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

/// What follows a backslash for each byte that must be escaped (RFC 8785 §3.2.2.2): `u` for
/// `\u00XX`, 0 for bytes written as they are. Bytes of multi-byte UTF-8 sequences are all ≥ 0x80,
/// so the table can be applied byte by byte.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any of the 8 bytes of `word` must be escaped: is below 0x20, `"` or `\\`. (Each test
/// is the exact "some byte is zero / less than n" bit trick; bytes ≥ 0x80 never match.)
#[inline]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH != 0
}

/// Whether any byte of `bytes` must be escaped.
#[inline]
fn has_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if needs_escape(u64::from_ne_bytes(word.try_into().expect("8 bytes"))) {
            return true;
        }
    }
    let tail = words.remainder();
    if tail.is_empty() {
        false
    } else if let Some(last) = bytes.len().checked_sub(8) {
        // The last 8 bytes, overlapping bytes already checked.
        needs_escape(u64::from_ne_bytes(
            bytes[last..].try_into().expect("8 bytes"),
        ))
    } else {
        tail.iter().any(|&b| ESCAPE[usize::from(b)] != 0)
    }
}

/// Appends `s` as a JSON string with RFC 8785 escaping.
#[inline]
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if has_escape(bytes) {
        write_escaped(bytes, out);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

#[cold]
fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_number_examples() {
        // RFC 8785 Appendix B samples (IEEE-754 double → JCS text).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (333333333.3333333, "333333333.3333333"),
            (-1.0, "-1"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(canon(json!(f)), *want, "formatting {f:e}");
            assert_eq!(to_vec_of(f).unwrap(), want.as_bytes(), "formatting {f:e}");
        }
    }

    #[test]
    fn sorts_keys_by_utf16_and_escapes_minimally() {
        let v = json!({"b": 1, "a": "x\u{0001}\"\\\n/é", "\u{20ac}": true, "\u{1f600}": null, "\u{fb33}": 0});
        // U+1F600 (surrogates D83D..) sorts before U+FB33 in UTF-16 order but after it in UTF-8.
        assert_eq!(
            canon(v),
            "{\"a\":\"x\\u0001\\\"\\\\\\n/é\",\"b\":1,\"€\":true,\"\u{1f600}\":null,\"\u{fb33}\":0}"
        );
    }

    #[test]
    fn refuses_unsafe_integers_with_path() {
        let err = to_vec(&json!({"f": {"n": [1, 9007199254740993u64]}})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::UnsafeInteger {
                path: "f.n[1]".into(),
                value: "9007199254740993".into()
            }
        );
        let v = json!({"x": [{"y": -9007199254740993i64}]});
        let want = CanonicalError::UnsafeInteger {
            path: "steps[0].output.x[0].y".into(),
            value: "-9007199254740993".into(),
        };
        assert_eq!(check_numbers(&v, "steps[0].output"), Err(want));
        assert_eq!(
            check_map_numbers(v.as_object().unwrap(), "context"),
            Err(CanonicalError::UnsafeInteger {
                path: "context.x[0].y".into(),
                value: "-9007199254740993".into(),
            })
        );
        assert_eq!(check_numbers(&json!([1, {"a": 2.5}]), "f"), Ok(()));
    }

    #[test]
    fn canonical_text_reparses_to_same_bytes() {
        let v = json!({"x": [0.92, 1.0, 1e-9, 123456789012345.6], "s": "\u{7f}\u{2028}"});
        let first = to_vec(&v).unwrap();
        let again: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(to_vec(&again).unwrap(), first);
    }

    #[derive(serde::Serialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(i32, f64),
        Struct { b: bool, a: Option<u8> },
    }

    #[derive(serde::Serialize)]
    struct Everything {
        zeta: Vec<Shape>,
        alpha: (u8, char, ()),
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        map: std::collections::BTreeMap<u32, &'static str>,
        nothing: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        float: f32,
        big: i128,
    }

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn any_serialize_matches_serde_json_value_shape() {
        let x = Everything {
            zeta: vec![
                Shape::Unit,
                Shape::Newtype(3),
                Shape::Tuple(-4, 0.5),
                Shape::Struct { b: true, a: None },
            ],
            alpha: (1, '\n', ()),
            bytes: vec![0, 255],
            map: [(10, "ten"), (9, "nine")].into_iter().collect(),
            nothing: None,
            skipped: None,
            float: 0.25,
            big: -7,
        };
        let via_value = reference::to_vec(&serde_json::to_value(&x).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(to_vec_of(&x).unwrap()).unwrap(),
            String::from_utf8(via_value).unwrap()
        );
    }

    #[test]
    fn refuses_non_finite_and_unrepresentable_values() {
        #[derive(serde::Serialize)]
        struct F {
            a: Vec<f64>,
        }
        assert_eq!(
            to_vec_of(&F {
                a: vec![1.0, f64::NAN]
            }),
            Err(CanonicalError::NonFinite {
                path: "a[1]".into()
            })
        );
        assert!(matches!(
            to_vec_of(&Shape::Tuple(1, f64::INFINITY)),
            Err(CanonicalError::NonFinite { path }) if path == "Tuple[1]"
        ));
        let map: std::collections::HashMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        assert!(matches!(
            to_vec_of(&map),
            Err(CanonicalError::Unsupported { .. })
        ));
        let raw = serde_json::value::RawValue::from_string("{\"b\":1,\"a\":2}".into()).unwrap();
        assert!(matches!(
            to_vec_of(&raw),
            Err(CanonicalError::Unsupported { .. })
        ));
        assert!(matches!(
            to_vec_of(&(1u128 << 70)),
            Err(CanonicalError::UnsafeInteger { .. })
        ));
        // The output buffer is left as it was.
        let mut out = b"keep".to_vec();
        assert!(write_of(&[f64::NAN], &mut out).is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn later_duplicate_key_wins_like_a_map() {
        struct Dup;
        impl serde::Serialize for Dup {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("b", &1)?;
                m.serialize_entry("a", &2)?;
                m.serialize_entry("b", &3)?;
                m.end()
            }
        }
        let via_value = reference::to_vec(&serde_json::to_value(Dup).unwrap()).unwrap();
        assert_eq!(to_vec_of(&Dup).unwrap(), via_value);
        assert_eq!(to_vec_of(&Dup).unwrap(), b"{\"a\":2,\"b\":3}");
    }

    #[test]
    fn every_record_field_matches_the_value_path() {
        let text = r#"{"schema_version":1,"kind":"decision","decision_id":"d1","tenant_id":"t",
            "occurred_at":"2026-03-15T12:23:45.123456+02:00","received_at":"2026-03-15T10:23:46Z",
            "caller":{"principal":"p","service":"s"},"subject":{"id":"u\u0000"},
            "subject_ref":"r","model":{"name":"m","version":"1","artifact_sha256":"a"},
            "dataset_manifest_sha256":"h","features":{"z":1,"é":[1.5,-0.0,{"q":null}],"\ud83d\ude00":"x"},
            "features_hmac":"f","outputs":[{"label":"l","score":0.92},{"label":"m","score":1e-7}],
            "decision":"approve","confidence":0.5,"threshold":1e21,"rationale":"because\n\"x\"",
            "explanation_ref":"e","action":{"type":"human_review","detail":"d"},"risk_tier":"high",
            "steps":[{"name":"s","version":"v","input_sha256":"i","output":{"b":[1,2],"a":"x"}}],
            "llm":{"prompt_sha256":"p","system_prompt_sha256":"s","parameters":{"temperature":0.7,
            "max_tokens":100,"top_p":1.0},"response_sha256":"r","finish_reason":"stop",
            "tokens":{"prompt":1,"completion":2}},"outcome":{"label":"x","value":-3.25},
            "review":{"reviewer":"r","verdict":"override","override_label":"o","notes":"n"},
            "sampling_rate":0.1,"context":{"\ufb33":1,"\ud83d\ude00":2,"a":{"b":{"c":[]}}}}"#;
        let r: crate::record::Record = serde_json::from_str(text).unwrap();
        let via_value = reference::to_vec(&serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(r.canonical_bytes().unwrap()).unwrap(),
            String::from_utf8(via_value).unwrap()
        );
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                proptest::sample::select(vec![
                    'a',
                    'b',
                    'B',
                    '\0',
                    '\n',
                    '"',
                    '\\',
                    '\u{7f}',
                    'é',
                    '\u{2028}',
                    '\u{e000}',
                    '\u{fb33}',
                    '\u{ffff}',
                    '\u{10000}',
                    '\u{1f600}',
                    '\u{10ffff}',
                ]),
                0..4
            )
            .prop_map(|c| c.into_iter().collect()),
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0..=MAX_SAFE_INTEGER).prop_map(Value::from),
            (-(MAX_SAFE_INTEGER as i64)..0).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            proptest::sample::select(vec![0.0, -0.0, 1.0, 1e21, 1e-7, 5e-324, 0.1, -1e300])
                .prop_map(Value::from),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            any::<String>().prop_map(Value::String),
            key().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The direct serializer gives exactly the bytes of the `Value` tree writer it replaced.
        #[test]
        fn direct_serializer_matches_value_tree_writer(v in arb_value()) {
            let want = reference::to_vec(&v);
            let got = to_vec(&v);
            match (&want, &got) {
                (Ok(w), Ok(g)) => prop_assert_eq!(w, g),
                (Err(w), Err(g)) => {
                    prop_assert_eq!(std::mem::discriminant(w), std::mem::discriminant(g))
                }
                _ => prop_assert!(false, "reference {:?} vs direct {:?}", want, got),
            }
            prop_assert_eq!(check_numbers(&v, "").is_ok(), want.is_ok());
            if let Ok(bytes) = want {
                // Canonical text is valid JSON (re-reading it is the codec's business: integral
                // doubles ≥ 2^53 come back as integers there).
                prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
            }
        }
    }

    /// What the direct walk writes, or `None` where it declines.
    fn walked(v: &Value) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        json_value::value(v, &mut out, 0).ok()?;
        Some(out.split_off(6))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Values and maps give the generic writer's bytes or its very error, whether the walk
        /// writes them or declines; on error the buffer keeps what it held.
        #[test]
        fn json_values_are_written_as_the_generic_writer_writes_them(v in arb_value()) {
            let generic = to_vec_of(&v);
            let mut out = b"kept".to_vec();
            let direct = write_value(&v, &mut out).map(|()| out[4..].to_vec());
            prop_assert_eq!(&direct, &generic);
            if direct.is_err() {
                prop_assert_eq!(&out, b"kept");
            }
            prop_assert_eq!(&to_vec(&v), &generic);
            if let Some(walked) = walked(&v) {
                prop_assert_eq!(Ok(walked), generic);
            }
            if let Value::Object(map) = &v {
                prop_assert_eq!(map_to_vec(map), to_vec_of(map));
            }
        }
    }

    #[test]
    fn the_walk_writes_ascii_keyed_values_and_declines_the_rest() {
        let typical = serde_json::json!({
            "credit_score": 720, "annual_income": 120000, "dti_ratio": 0.35,
            "flags": [true, false, null], "nested": {"b": -1, "a": "x\"y"}, "tiny": 5e-324,
        });
        assert_eq!(walked(&typical), Some(to_vec_of(&typical).unwrap()));
        for declined in [
            serde_json::json!({"é": 1}),
            serde_json::json!({"a": [9_007_199_254_740_993u64]}),
            serde_json::json!([-9_007_199_254_740_993i64]),
        ] {
            assert!(walked(&declined).is_none(), "{declined}");
        }
        let mut deep = Value::Null;
        for _ in 0..200 {
            deep = Value::Array(vec![deep]);
        }
        assert!(walked(&deep).is_none());
        assert_eq!(to_vec(&deep), to_vec_of(&deep));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Word-at-a-time escaping agrees with the character-by-character reference.
        #[test]
        fn string_escaping_matches_reference(
            chars in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::char::range(' ', '~'),
                    2 => proptest::char::range('\0', '\u{1f}'),
                    1 => proptest::sample::select(vec!['"', '\\', '\u{7f}', 'é', '\u{1f600}']),
                    1 => any::<char>(),
                ],
                0..80,
            )
        ) {
            let text: String = chars.into_iter().collect();
            let want = reference::to_vec(&Value::String(text.clone())).unwrap();
            prop_assert_eq!(to_vec_of(&text).unwrap(), want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Cutting out a member's span gives the canonical bytes of the object without it.
        #[test]
        fn member_span_cuts_to_the_object_without_it(
            members in proptest::collection::btree_map(key(), arb_value(), 0..8),
            name in key(),
            pick in any::<proptest::sample::Index>(),
        ) {
            let mut object: Map<String, Value> = members.into_iter().collect();
            let name = if object.is_empty() || pick.index(2) == 0 {
                name
            } else {
                object.keys().nth(pick.index(object.len())).cloned().unwrap_or(name)
            };
            let Ok((bytes, span)) = to_vec_with_member(&object, &name) else {
                return Ok(());
            };
            prop_assert_eq!(&bytes, &to_vec_of(&object).unwrap());
            let had = object.remove(&name).is_some();
            prop_assert_eq!(span.is_some(), had);
            let mut cut = bytes.clone();
            if let Some(span) = span {
                cut.drain(span);
            }
            prop_assert_eq!(cut, map_to_vec(&object).unwrap());
        }
    }

    #[test]
    fn member_span_of_a_struct_out_of_order() {
        #[derive(serde::Serialize)]
        struct S {
            z: u8,
            #[serde(skip_serializing_if = "Option::is_none")]
            m: Option<&'static str>,
            a: u8,
        }
        for (m, want) in [
            (Some("x"), "{\"a\":2,\"z\":1}"),
            (None, "{\"a\":2,\"z\":1}"),
        ] {
            let (bytes, span) = to_vec_with_member(&S { z: 1, m, a: 2 }, "m").unwrap();
            assert_eq!(span.is_some(), m.is_some());
            let mut cut = bytes;
            if let Some(span) = span {
                cut.drain(span);
            }
            assert_eq!(String::from_utf8(cut).unwrap(), want);
        }
        let (bytes, span) = to_vec_with_member(
            &S {
                z: 1,
                m: None,
                a: 2,
            },
            "z",
        )
        .unwrap();
        assert_eq!(&bytes[span.unwrap()], b",\"z\":1");
    }

    /// The `serde_json::Value` tree writer that `to_vec_of` used to go through, kept as the
    /// reference the direct serializer must match byte for byte.
    mod reference {
        use super::super::{CanonicalError, MAX_SAFE_INTEGER};
        use serde_json::{Map, Number, Value};

        pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
            let mut out = Vec::with_capacity(256);
            write_value(value, &mut out, &mut String::new())?;
            Ok(out)
        }

        fn write_value(
            value: &Value,
            out: &mut Vec<u8>,
            path: &mut String,
        ) -> Result<(), CanonicalError> {
            match value {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Number(n) => out.extend_from_slice(number_repr(n, path)?.as_bytes()),
                Value::String(s) => write_string(s, out),
                Value::Array(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        write_value(item, out, path)?;
                        path.truncate(len);
                    }
                    out.push(b']');
                }
                Value::Object(map) => write_object(map, out, path)?,
            }
            Ok(())
        }

        fn write_object(
            map: &Map<String, Value>,
            out: &mut Vec<u8>,
            path: &mut String,
        ) -> Result<(), CanonicalError> {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                write_value(&map[key], out, path)?;
                path.truncate(len);
            }
            out.push(b'}');
            Ok(())
        }

        fn number_repr(n: &Number, path: &str) -> Result<String, CanonicalError> {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::UnsafeInteger {
                        path: path.to_string(),
                        value: u.to_string(),
                    });
                }
                return Ok(u.to_string());
            }
            if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::UnsafeInteger {
                        path: path.to_string(),
                        value: i.to_string(),
                    });
                }
                return Ok(i.to_string());
            }
            let f = n.as_f64().ok_or_else(|| CanonicalError::NonFinite {
                path: path.to_string(),
            })?;
            if !f.is_finite() {
                return Err(CanonicalError::NonFinite {
                    path: path.to_string(),
                });
            }
            if f == 0.0 {
                return Ok("0".to_string());
            }
            let mut buf = ryu_js::Buffer::new();
            Ok(buf.format_finite(f).to_string())
        }

        fn write_string(s: &str, out: &mut Vec<u8>) {
            out.push(b'"');
            for ch in s.chars() {
                match ch {
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\u{08}' => out.extend_from_slice(b"\\b"),
                    '\u{0C}' => out.extend_from_slice(b"\\f"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    c if (c as u32) < 0x20 => {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                    }
                    c => {
                        let mut b = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            out.push(b'"');
        }
    }
}
