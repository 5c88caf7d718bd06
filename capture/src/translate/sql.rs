//! SQL text of a database/sql span: its verb, and the statement with its literals replaced
//! by `?` (unless `--keep-query`), so no personal data reaches the capture.

/// The SQL statement's verb: its first keyword, upper-cased ("SELECT", "INSERT", ...), after
/// leading whitespace, parentheses and comments.
pub fn sql_verb(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = s.strip_prefix('(') {
            s = r.trim_start();
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Replaces SQL literals with `?`: quoted strings ('..', with '' escapes; E'..', $$..$$
/// and $tag$..$tag$ dollar quoting) and numbers that are not part of an identifier or a
/// `$1` placeholder. Identifiers ("quoted" too), keywords, placeholders and comments stay.
/// Whitespace runs become one space.
pub fn normalize_sql(sql: &str) -> String {
    let b: Vec<char> = sql.trim().chars().collect();
    let mut out = String::with_capacity(sql.len());
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev = out.chars().last();
        if c == '\''
            || ((c == 'E' || c == 'e') && b.get(i + 1) == Some(&'\'') && !prev.is_some_and(ident))
        {
            // string literal
            i += if c == '\'' { 1 } else { 2 };
            while i < b.len() {
                if b[i] == '\'' {
                    if b.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if b[i] == '\\' && c != '\'' {
                    i += 1;
                }
                i += 1;
            }
            out.push('?');
        } else if c == '$' && !prev.is_some_and(ident) && dollar_tag(&b[i..]).is_some() {
            let tag = dollar_tag(&b[i..]).unwrap_or_default();
            let t: Vec<char> = tag.chars().collect();
            i += t.len();
            while i < b.len() && !b[i..].starts_with(&t) {
                i += 1;
            }
            i = (i + t.len()).min(b.len());
            out.push('?');
        } else if c == '"' || c == '`' {
            // quoted identifier: copy verbatim
            out.push(c);
            i += 1;
            while i < b.len() {
                out.push(b[i]);
                i += 1;
                if b[i - 1] == c {
                    break;
                }
            }
        } else if c.is_ascii_digit() && !prev.is_some_and(ident) {
            // number: 42, 4.2, .5e3, 0x1F
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == '.'
                    || ((b[i] == '+' || b[i] == '-') && matches!(b[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push('?');
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            while i < b.len() && b[i] != '\n' {
                out.push(b[i]);
                i += 1;
            }
        } else if c.is_whitespace() {
            while i < b.len() && b[i].is_whitespace() {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `$tag$` or `$$` at the start of `s` (PostgreSQL dollar quoting; `$1` is a placeholder).
fn dollar_tag(s: &[char]) -> Option<String> {
    let end = s.iter().skip(1).position(|&c| c == '$')? + 1;
    let tag = &s[1..end];
    if tag.first().is_some_and(|c| c.is_ascii_digit())
        || !tag.iter().all(|c| c.is_alphanumeric() || *c == '_')
    {
        return None;
    }
    Some(s[..=end].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_literals() {
        assert_eq!(
            normalize_sql("SELECT * FROM orders WHERE id = 42"),
            "SELECT * FROM orders WHERE id = ?"
        );
        assert_eq!(
            normalize_sql(
                "select name  from t1\n where a='it''s' AND b IN (1, 2.5, -3e-2) and c=$1"
            ),
            "select name from t1 where a=? AND b IN (?, ?, -?) and c=$1"
        );
        assert_eq!(
            normalize_sql("INSERT INTO \"Users 2\" (x) VALUES (E'a\\'b', $$raw 'x'$$, 0x1F)"),
            "INSERT INTO \"Users 2\" (x) VALUES (?, ?, ?)"
        );
        assert_eq!(
            normalize_sql("update t set v=$tag$x$tag$ where k=?"),
            "update t set v=? where k=?"
        );
        assert_eq!(sql_verb("  /* hi */ select 1"), "SELECT");
        assert_eq!(sql_verb("-- c\n(SELECT 1)"), "SELECT");
        assert_eq!(sql_verb("insert into x"), "INSERT");
        assert_eq!(sql_verb(""), "");
    }
}
