//! Glob-style matching identical to Redis 7.0's `stringmatchlen` (KEYS, SCAN MATCH,
//! PSUBSCRIBE, CONFIG GET, ...): `*`, `?`, `[abc]`, `[^abc]`, `[a-z]`, `\x` escapes, optional
//! case folding. Bounded like Redis: `*` recursion is cut at depth 1000 and a failed `*`
//! suffix search stops earlier stars from retrying longer matches, so abusive patterns such
//! as `a*a*a*...b` run in polynomial time.

/// Whether `s` matches `pattern`.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer, 0)
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn match_impl(
    mut pat: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > 1000 {
        return false;
    }
    // The C code reads the NUL terminator past the end of the pattern.
    let at = |p: &[u8], i: usize| p.get(i).copied().unwrap_or(0);
    while !pat.is_empty() && !s.is_empty() {
        match pat[0] {
            b'*' => {
                while pat.len() > 1 && pat[1] == b'*' {
                    pat = &pat[1..];
                }
                if pat.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&pat[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
            }
            b'[' => {
                pat = &pat[1..];
                let not = at(pat, 0) == b'^';
                if not {
                    pat = &pat[1..];
                }
                let mut matched = false;
                // `back` re-points at the previous byte, as the C code's `pattern--` does when
                // the class is unterminated.
                let full = pat;
                let mut i = 0usize;
                loop {
                    let rest = &full[i..];
                    if at(rest, 0) == b'\\' && rest.len() >= 2 {
                        i += 1;
                        if full[i] == s[0] {
                            matched = true;
                        }
                    } else if at(rest, 0) == b']' {
                        break;
                    } else if rest.is_empty() {
                        // Unterminated class: step back so the outer loop's advance lands
                        // at the end of the pattern.
                        break;
                    } else if rest.len() >= 3 && rest[1] == b'-' {
                        let (mut start, mut end) = (rest[0], rest[2]);
                        let mut c = s[0];
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            c = lower(c);
                        }
                        i += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if nocase {
                        if lower(rest[0]) == lower(s[0]) {
                            matched = true;
                        }
                    } else if rest[0] == s[0] {
                        matched = true;
                    }
                    i += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                // Leave `pat` on the closing `]` (or on the last byte when unterminated) so
                // the common advance below steps past it.
                if i >= full.len() {
                    // Unterminated: C backs up one byte then advances past the end.
                    pat = &[];
                    if s.is_empty() {
                        break;
                    }
                    continue;
                }
                pat = &full[i..];
            }
            b'\\' => {
                if pat.len() >= 2 {
                    pat = &pat[1..];
                }
                if !eq(pat[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        pat = &pat[1..];
        if s.is_empty() {
            while !pat.is_empty() && pat[0] == b'*' {
                pat = &pat[1..];
            }
            break;
        }
    }
    pat.is_empty() && s.is_empty()
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        lower(a) == lower(b)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basic_wildcards() {
        // Like Redis' stringmatchlen (KEYS special-cases a lone "*").
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(!m("a*b*c", "aXbY"));
        assert!(m("foo*", "foo"));
        assert!(m("foo**", "foo"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(!m("a", ""));
        assert!(!m("?", ""));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[\\]]", "]"));
        assert!(m("a\\", "a\\"));
        // Unterminated class: matches like Redis (the class runs to the end of the pattern).
        assert!(m("[abc", "a"));
        assert!(!m("[abc", "ab"));
        assert!(!m("[", "x"));
        assert!(m("[^", "x"));
        assert!(m("x[a-", "xa"));
    }

    #[test]
    fn nocase() {
        assert!(matches(b"HeLLo", b"hello", true));
        assert!(matches(b"h[A-Z]llo", b"hello", true));
        assert!(!matches(b"HeLLo", b"hello", false));
    }

    #[test]
    fn binary_and_abusive_patterns_are_bounded() {
        assert!(matches(b"a\0*", b"a\0bc", false));
        let pattern = "a*".repeat(5000) + "b";
        let subject = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &subject));
        assert!(start.elapsed().as_secs() < 5);
        let deep = "*?".repeat(2000);
        assert!(!m(&deep, &"x".repeat(1500)));
    }
}
