//! Scrubbing personal data out of free text, with small hand-written scanners (no regex).
//!
//! Found, in this order of precedence (a span claimed by one is never re-examined by another):
//!
//! | kind | what matches | marker |
//! |---|---|---|
//! | e-mail | `local@domain.tld`: local part of letters, digits and `._%+-`; a domain of two or more labels ending in an alphabetic label of ≥ 2 letters (`name@example` without a dot is *not* matched) | `[email]` |
//! | IBAN | two letters, two check digits, 11–30 more letters/digits (15–34 in all), unbroken or printed in groups of four separated by single spaces; ISO 7064 mod-97 checksum must hold | `[iban]` |
//! | card | 13–19 digits, unbroken, or in groups separated by one kind of separator (single spaces or single dashes) where the first group has 4 digits and every group 3–6; the Luhn checksum must hold | `[card]` |
//! | US SSN | `ddd-dd-dddd` with an issuable area (not 000, 666, 900–999), group (not 00) and serial (not 0000) | `[national-id]` |
//! | UK NINO | two prefix letters (first not D F I Q U V, second not D F I O Q U V, not BG GB KN NK NT TN ZZ), six digits, suffix A–D; single spaces allowed between the letter pair and each digit pair (`AB 12 34 56 C`); letters all upper or all lower case | `[national-id]` |
//!
//! Every match must stand on its own: not preceded or followed by a letter, digit or `_`, nor
//! joined to another number by `.`, `,`, `-` or `/` (so `0.4111111111111111`, `x4111111111111111`
//! and `4111-1111-1111-1111-2` are left alone). Scrubbing is deterministic and leaves every other
//! character of the text as it was.

use std::borrow::Cow;

/// A kind of personal data found in free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TextKind {
    Email,
    Card,
    /// US Social Security or UK National Insurance number.
    NationalId,
    Iban,
}

impl TextKind {
    pub const ALL: [TextKind; 4] = [
        TextKind::Email,
        TextKind::Card,
        TextKind::NationalId,
        TextKind::Iban,
    ];

    /// What replaces a finding in the text.
    pub fn marker(self) -> &'static str {
        match self {
            TextKind::Email => "[email]",
            TextKind::Card => "[card]",
            TextKind::NationalId => "[national-id]",
            TextKind::Iban => "[iban]",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::Email => "email",
            TextKind::Card => "card",
            TextKind::NationalId => "national_id",
            TextKind::Iban => "iban",
        }
    }
}

/// The text with every finding replaced by its kind's marker, and the kinds found (in
/// [`TextKind`] order, each once). The text is borrowed unchanged when nothing was found.
pub fn scrub_text(text: &str) -> (Cow<'_, str>, Vec<TextKind>) {
    let mut spans = Spans::default();
    if text.contains('@') {
        find_emails(text, &mut spans);
    }
    if text.bytes().any(|b| b.is_ascii_digit()) {
        find_ibans(text, &mut spans);
        find_cards(text, &mut spans);
        find_ssns(text, &mut spans);
        find_ninos(text, &mut spans);
    }
    if spans.0.is_empty() {
        return (Cow::Borrowed(text), Vec::new());
    }
    spans.0.sort_by_key(|&(start, _, _)| start);
    let mut out = String::with_capacity(text.len());
    let mut kinds = Vec::new();
    let mut at = 0;
    for &(start, end, kind) in &spans.0 {
        out.push_str(&text[at..start]);
        out.push_str(kind.marker());
        kinds.push(kind);
        at = end;
    }
    out.push_str(&text[at..]);
    kinds.sort();
    kinds.dedup();
    (Cow::Owned(out), kinds)
}

/// Claimed byte ranges `[start, end)` of the text, never overlapping.
#[derive(Default)]
struct Spans(Vec<(usize, usize, TextKind)>);

impl Spans {
    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.0.iter().any(|&(s, e, _)| start < e && s < end)
    }

    /// Claims a range unless part of it is already claimed.
    fn claim(&mut self, start: usize, end: usize, kind: TextKind) -> bool {
        if self.overlaps(start, end) {
            return false;
        }
        self.0.push((start, end, kind));
        true
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters that join two numbers into one (`1.5`, `1,000`, `2024-01`, `1/2`).
fn is_joiner(c: char) -> bool {
    matches!(c, '.' | ',' | '-' | '/')
}

/// Nothing that would make the match part of a longer word or number comes just before `start`.
fn left_bounded(text: &str, start: usize) -> bool {
    let mut before = text[..start].chars().rev();
    match before.next() {
        None => true,
        Some(c) if is_word(c) => false,
        Some(c) if is_joiner(c) => !before.next().is_some_and(|d| d.is_ascii_digit()),
        Some(_) => true,
    }
}

/// Nothing that would make the match part of a longer word or number comes just after `end`.
fn right_bounded(text: &str, end: usize) -> bool {
    let mut after = text[end..].chars();
    match after.next() {
        None => true,
        Some(c) if is_word(c) => false,
        Some(c) if is_joiner(c) => !after.next().is_some_and(|d| d.is_ascii_digit()),
        Some(_) => true,
    }
}

// ---- e-mail addresses ----

fn local_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn domain_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

fn find_emails(text: &str, spans: &mut Spans) {
    for (at, _) in text.match_indices('@') {
        let mut start = at;
        for c in text[..at].chars().rev() {
            if !local_char(c) {
                break;
            }
            start -= c.len_utf8();
        }
        while text[start..at].starts_with('.') {
            start += 1;
        }
        if start == at {
            continue;
        }
        let mut run = at + 1;
        for c in text[at + 1..].chars().take(MAX_DOMAIN) {
            if !domain_char(c) {
                break;
            }
            run += c.len_utf8();
        }
        // The longest domain that ends where the run ends or before a `.` or `-`, so that
        // `jane@bank.com.` and `jane@bank.com-ticket-42` still give `jane@bank.com`.
        let domain = &text[at + 1..run];
        let longest = domain
            .char_indices()
            .filter(|&(_, c)| c == '.' || c == '-')
            .map(|(k, _)| k)
            .chain([domain.len()])
            .filter(|&k| is_domain(&domain[..k]))
            .max();
        if let Some(len) = longest {
            spans.claim(start, at + 1 + len, TextKind::Email);
        }
    }
}

/// The longest domain name DNS allows, in characters; a longer run is looked at only this far.
const MAX_DOMAIN: usize = 253;

/// Two or more labels, none empty or edged with `-`, the last alphabetic and ≥ 2 letters long.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().count() <= 63
        })
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
}

// ---- IBANs ----

fn alnum_run(b: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < b.len() && b[end].is_ascii_alphanumeric() {
        end += 1;
    }
    end
}

fn find_ibans(text: &str, spans: &mut Spans) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let starts = b[i].is_ascii_alphabetic()
            && b[i + 1].is_ascii_alphabetic()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && left_bounded(text, i);
        if starts {
            if let Some(end) = iban_at(text, i) {
                if spans.claim(i, end, TextKind::Iban) {
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
}

/// The end of an IBAN starting at `i` (country code and check digits already seen), trying the
/// printed form's groups from the longest run down.
fn iban_at(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let first_end = alnum_run(b, i);
    let mut groups = vec![(i, first_end)];
    if first_end - i == 4 {
        let mut at = first_end;
        while groups.len() < 9
            && at + 1 < b.len()
            && b[at] == b' '
            && b[at + 1].is_ascii_alphanumeric()
        {
            let end = alnum_run(b, at + 1);
            let len = end - (at + 1);
            if len > 4 {
                break;
            }
            groups.push((at + 1, end));
            if len < 4 {
                break;
            }
            at = end;
        }
    }
    (0..groups.len()).rev().find_map(|last| {
        let chars: Vec<u8> = groups[..=last]
            .iter()
            .flat_map(|&(s, e)| b[s..e].iter().copied())
            .collect();
        let end = groups[last].1;
        ((15..=34).contains(&chars.len()) && iban_checksum(&chars) && right_bounded(text, end))
            .then_some(end)
    })
}

/// ISO 7064 MOD 97-10 over the IBAN with its first four characters moved to the end.
fn iban_checksum(chars: &[u8]) -> bool {
    let mut r: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let c = c.to_ascii_uppercase();
        r = if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    r == 1
}

// ---- payment cards ----

fn digit_run(b: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    end
}

fn find_cards(text: &str, spans: &mut Spans) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Digit groups joined by single separators, one kind throughout.
        let mut groups = vec![(i, digit_run(b, i))];
        let mut sep = None;
        loop {
            let at = groups[groups.len() - 1].1;
            let joined = at + 1 < b.len()
                && matches!(b[at], b' ' | b'-')
                && b[at + 1].is_ascii_digit()
                && sep.is_none_or(|s| s == b[at]);
            if !joined {
                break;
            }
            sep = Some(b[at]);
            groups.push((at + 1, digit_run(b, at + 1)));
        }
        let mut first = 0;
        while first < groups.len() {
            first = match card_from(text, &groups, first, spans) {
                Some(last) => last + 1,
                None => first + 1,
            };
        }
        i = groups[groups.len() - 1].1;
    }
}

/// The longest card number starting at group `first`; returns its last group.
fn card_from(
    text: &str,
    groups: &[(usize, usize)],
    first: usize,
    spans: &mut Spans,
) -> Option<usize> {
    let b = text.as_bytes();
    if !left_bounded(text, groups[first].0) {
        return None;
    }
    let len = |g: &(usize, usize)| g.1 - g.0;
    let most = groups.len().min(first + 19);
    for last in (first..most).rev() {
        let parts = &groups[first..=last];
        let digits: usize = parts.iter().map(len).sum();
        if !(13..=19).contains(&digits) {
            continue;
        }
        if parts.len() > 1
            && (len(&parts[0]) != 4 || parts.iter().any(|g| !(3..=6).contains(&len(g))))
        {
            continue;
        }
        let end = parts[parts.len() - 1].1;
        if !right_bounded(text, end) {
            continue;
        }
        let number: Vec<u8> = parts
            .iter()
            .flat_map(|&(s, e)| b[s..e].iter().copied())
            .collect();
        if luhn(&number) && spans.claim(parts[0].0, end, TextKind::Card) {
            return Some(last);
        }
    }
    None
}

/// The Luhn (mod 10) check over ASCII digits.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, d)| {
            let v = u32::from(d - b'0');
            match (k % 2 == 1, v * 2) {
                (false, _) => v,
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
            }
        })
        .sum();
    sum % 10 == 0
}

// ---- national ids ----

fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn find_ssns(text: &str, spans: &mut Spans) {
    let b = text.as_bytes();
    if b.len() < 11 {
        return;
    }
    for i in 0..=b.len() - 11 {
        let w = &b[i..i + 11];
        let shaped = w.iter().enumerate().all(|(k, c)| match k {
            3 | 6 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
        if !shaped || !left_bounded(text, i) || !right_bounded(text, i + 11) {
            continue;
        }
        let (area, group, serial) = (number(&w[0..3]), number(&w[4..6]), number(&w[7..11]));
        if area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 {
            spans.claim(i, i + 11, TextKind::NationalId);
        }
    }
}

fn find_ninos(text: &str, spans: &mut Spans) {
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i].is_ascii_alphabetic() && left_bounded(text, i) {
            if let Some(end) = nino_at(b, i) {
                if right_bounded(text, end) {
                    spans.claim(i, end, TextKind::NationalId);
                }
            }
        }
    }
}

/// The end of a UK National Insurance number starting at `i`.
fn nino_at(b: &[u8], i: usize) -> Option<usize> {
    let letter = |at: usize| b.get(at).copied().filter(u8::is_ascii_alphabetic);
    let digit = |at: usize| b.get(at).is_some_and(u8::is_ascii_digit);
    let (p1, p2) = (letter(i)?, letter(i + 1)?);
    let mut at = i + 2;
    for _ in 0..3 {
        if b.get(at) == Some(&b' ') {
            at += 1;
        }
        if !(digit(at) && digit(at + 1)) {
            return None;
        }
        at += 2;
    }
    if b.get(at) == Some(&b' ') {
        at += 1;
    }
    let suffix = letter(at)?;
    let letters = [p1, p2, suffix];
    let same_case =
        letters.iter().all(u8::is_ascii_uppercase) || letters.iter().all(u8::is_ascii_lowercase);
    let [p1, p2, suffix] = letters.map(|c| c.to_ascii_uppercase());
    let valid = same_case
        && !b"DFIQUV".contains(&p1)
        && !b"DFIOQUV".contains(&p2)
        && !matches!(
            &[p1, p2],
            b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
        )
        && (b'A'..=b'D').contains(&suffix);
    valid.then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(text: &str) -> (String, Vec<TextKind>) {
        let (out, kinds) = scrub_text(text);
        (out.into_owned(), kinds)
    }

    fn same(text: &str) {
        let (out, kinds) = scrub_text(text);
        assert!(
            matches!(out, Cow::Borrowed(_)) && kinds.is_empty(),
            "{text:?} was scrubbed to {out:?}"
        );
    }

    fn becomes(text: &str, expected: &str) {
        assert_eq!(scrub(text).0, expected, "{text:?}");
    }

    #[test]
    fn emails() {
        becomes(
            "contact jane.doe+loans@bank.example.co.uk now",
            "contact [email] now",
        );
        becomes(
            "<a@b.io>, (b_c%d-e@sub-domain.example.org).",
            "<[email]>, ([email]).",
        );
        becomes("mailto:josé@correo.es", "mailto:[email]");
        becomes(
            "end of sentence: ops@bank.com.",
            "end of sentence: [email].",
        );
        becomes("..jane@bank.com", "..[email]");
        becomes("a@b.com@c.org", "[email]@c.org");
        becomes("ref jane@bank.com-ticket-42", "ref [email]-ticket-42");
        becomes("jane@bank.com.-x", "[email].-x");
        becomes("a@b.co-123-45-6789", "[email]-[national-id]");
        becomes(
            "arn:aws:sts::123456789012:assumed-role/Auditor/jane@bank.com",
            "arn:aws:sts::123456789012:assumed-role/Auditor/[email]",
        );
        // Not addresses: no dotted domain, a numeric or one-letter top level, nothing before @.
        same("name@example");
        same("ping @channel and @here");
        same("pkg@1.2.3");
        same("model@v3");
        same("user@host.c");
        same("user@-bad.com");
        same("@example.com");
        same("x@.com");
    }

    #[test]
    fn cards() {
        becomes("card 4111111111111111 on file", "card [card] on file");
        becomes("4111 1111 1111 1111", "[card]");
        becomes("4111-1111-1111-1111.", "[card].");
        becomes("amex 3782 822463 10005", "amex [card]");
        becomes("visa13 4222222222222", "visa13 [card]");
        becomes("19: 4000 0000 0000 0000 006", "19: [card]");
        becomes("mc 5555555555554444, exp 12/29", "mc [card], exp 12/29");
        // A card beside other numbers.
        becomes("ref 12 4111 1111 1111 1111 2024", "ref 12 [card] 2024");
        // Identifiers glued with a dash are not shielded: a Luhn-valid number is masked.
        becomes("ORD-4111111111111111", "ORD-[card]");
        // Luhn fails: an order id, not a card.
        same("ORD-4111111111111112");
        same("order 4111111111111112 shipped");
        // Too short or too long, phone numbers, mixed separators, bad grouping.
        same("call 4155550132 or +1 415-555-0132");
        same("+44 20 7946 0958");
        same("411111111111"); // 12 digits
        same("41111111111111111110"); // 20 digits
        same("4111 1111-1111 1111");
        same("41 11 11 11 11 11 11 11");
        // Part of something longer.
        same("x4111111111111111");
        same("4111111111111111x");
        same("0.4111111111111111");
        same("4111111111111111.5");
        same("4111-1111-1111-1111-2");
        same("9f2c4111111111111111");
    }

    #[test]
    fn national_ids() {
        becomes("ssn 123-45-6789.", "ssn [national-id].");
        becomes("078-05-1120", "[national-id]");
        for not_issued in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            same(not_issued);
        }
        same("1123-45-6789");
        same("123-45-67890");
        same("123 45 6789");
        same("2024-123-45-6789");

        becomes("NINO AB123456C", "NINO [national-id]");
        becomes("ni: AB 12 34 56 C;", "ni: [national-id];");
        becomes("ab123456c", "[national-id]");
        becomes("CE 123456 D", "[national-id]");
        for bad in [
            "QQ123456C", // Q may not lead
            "AO123456A", // O may not follow
            "GB123456A", // unallocated prefix
            "ZZ123456A",
            "AB123456E", // suffix A–D only
            "AB123456",  // suffix required
            "Ab123456c", // mixed case
            "AB1234567C",
            "XAB123456C",
            "AB123456CD",
        ] {
            same(bad);
        }
    }

    #[test]
    fn ibans() {
        becomes("pay GB82 WEST 1234 5698 7654 32 today", "pay [iban] today");
        becomes("GB82WEST12345698765432", "[iban]");
        becomes("de89370400440532013000", "[iban]");
        becomes("DE89 3704 0044 0532 0130 00", "[iban]");
        // A length that is a multiple of four, followed by a word.
        becomes("BE68 5390 0754 7034 and more", "[iban] and more");
        becomes("NO9386011117947", "[iban]");
        // The checksum fails (and the digits are no card either).
        same("GB82 WEST 1234 5698 7654 33");
        same("GB82WEST12345698765433");
        same("XGB82WEST12345698765432");
        same("GB82WEST12345698765432X");
        same("AB12 short");
    }

    #[test]
    fn several_kinds_in_one_text_and_unicode_around_them() {
        let (out, kinds) = scrub(
            "Über: jane@bank.com paid 4111 1111 1111 1111 from GB82 WEST 1234 5698 7654 32, \
             SSN 123-45-6789 — NI AB123456C; again jane@bank.com ✓",
        );
        assert_eq!(
            out,
            "Über: [email] paid [card] from [iban], SSN [national-id] — NI [national-id]; \
             again [email] ✓"
        );
        assert_eq!(
            kinds,
            [
                TextKind::Email,
                TextKind::Card,
                TextKind::NationalId,
                TextKind::Iban
            ]
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_untouched() {
        for text in [
            "",
            "Strong credit score, stable income, DTI 0.35",
            "01JD6Z6M4Y8N3K2Q0V5R7T9W1X",
            "550e8400-e29b-41d4-a716-446655440000",
            "2026-03-15T10:23:45.123Z",
            "9f2c8b1e4a5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b",
            "s3://models/9f2c/explanation.json",
            "score 0.92 ≥ threshold 0.75; 1,234,567.89 USD; ratio 3/4",
            "[email] [card] [national-id] [iban] [redacted]",
        ] {
            same(text);
        }
    }

    proptest::proptest! {
        /// Any text: no panic, the same answer every time, a marker for every kind reported,
        /// and the text untouched when nothing was found.
        #[test]
        fn any_text_is_handled(text in "\\PC{0,80}") {
            check_any(&text);
        }

        /// Texts dense in the characters the scanners care about.
        #[test]
        fn scanner_alphabet(text in "[0-9A-Da-d@. \\-/,_xé]{0,60}") {
            check_any(&text);
        }
    }

    fn check_any(text: &str) {
        let (out, kinds) = scrub_text(text);
        assert_eq!(scrub_text(text), (out.clone(), kinds.clone()));
        if kinds.is_empty() {
            assert_eq!(out, text);
        } else {
            assert!(
                kinds.iter().all(|k| out.contains(k.marker())),
                "{text:?} → {out:?}"
            );
        }
    }

    #[test]
    fn checksums() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"378282246310005"));
        assert!(iban_checksum(b"GB82WEST12345698765432"));
        assert!(iban_checksum(b"gb82west12345698765432"));
        assert!(!iban_checksum(b"GB28WEST12345698765432"));
    }
}
