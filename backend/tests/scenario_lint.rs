//! Lint of the guest scenarios (no VM): every KTAP `ok` must come from a check that can fail.
//!
//! The rule, kept simple enough to explain in one line: a `ktap_ok` command is allowed only
//! inside an `if ... fi` or `case ... esac` block (in any branch), or after `&&` / `||` in its
//! and-or list (`cond && ktap_ok x || ktap_fail x why`, also inside a `{ ...; }` or `( ... )`
//! group that follows one). `ktap_check`, the lib function that turns a command into a case, is
//! itself such an `if`. A bare `ktap_ok x` at statement level is an unconditional pass, and the
//! lint names its file and line.
//!
//! The shell is read with a small tokenizer: comments and the insides of quotes, `$( )`,
//! `$(( ))` and `${ }` and the bodies of here-documents are skipped (a `ktap_ok` inside a
//! command substitution is not seen); what it cannot read (an unterminated quote, an `if` without
//! its `fi`) fails the lint rather than passing it.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A word; quoted parts are replaced by `\u{1}`, so a quoted `"if"` is no keyword.
    Word(String),
    /// `;` `;;` `&` `&&` `|` `||` `(` `)`.
    Op(&'static str),
    Newline,
}

/// The tokens of `src`, each with its 1-based line.
fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut word_line = 1;
    let mut line = 1;
    let mut i = 0;
    // Here-documents whose body starts at the next line: delimiter, `<<-`, line of the `<<`.
    let mut heredocs: Vec<(String, bool, usize)> = Vec::new();
    fn flush(word: &mut String, at: usize, out: &mut Vec<(Tok, usize)>) {
        if !word.is_empty() {
            out.push((Tok::Word(std::mem::take(word)), at));
        }
    }
    while i < c.len() {
        let ch = c[i];
        if word.is_empty() {
            word_line = line;
        }
        match ch {
            '\n' => {
                flush(&mut word, word_line, &mut out);
                out.push((Tok::Newline, line));
                line += 1;
                i += 1;
                for (delim, strip_tabs, from) in heredocs.drain(..) {
                    loop {
                        if i >= c.len() {
                            return Err(format!(
                                "line {from}: here-document without its `{delim}` line"
                            ));
                        }
                        let end = c[i..]
                            .iter()
                            .position(|&x| x == '\n')
                            .map_or(c.len(), |n| i + n);
                        let text: String = c[i..end].iter().collect();
                        i = (end + 1).min(c.len());
                        line += 1;
                        let text = if strip_tabs {
                            text.trim_start_matches('\t')
                        } else {
                            &text
                        };
                        if text == delim {
                            break;
                        }
                    }
                }
            }
            ' ' | '\t' | '\r' => {
                flush(&mut word, word_line, &mut out);
                i += 1;
            }
            '\\' => {
                if c.get(i + 1) == Some(&'\n') {
                    // A line continuation joins the lines.
                    flush(&mut word, word_line, &mut out);
                    line += 1;
                } else {
                    word.push('\u{1}');
                }
                i += 2;
            }
            '#' if word.is_empty() => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '\'' | '"' | '`' => {
                i = skip_quoted(&c, i, &mut line)?;
                word.push('\u{1}');
            }
            '$' if matches!(c.get(i + 1), Some('(') | Some('{')) => {
                i = skip_nested(&c, i + 1, &mut line)?;
                word.push('\u{1}');
            }
            '<' if c.get(i + 1) == Some(&'<') && c.get(i + 2) != Some(&'<') => {
                // A here-document: its body (from the next line to the delimiter) is text.
                i += 2;
                let strip_tabs = c.get(i) == Some(&'-');
                if strip_tabs {
                    i += 1;
                }
                while matches!(c.get(i), Some(' ') | Some('\t')) {
                    i += 1;
                }
                let mut delim = String::new();
                while i < c.len() && !" \t\n;&|()<>".contains(c[i]) {
                    if !matches!(c[i], '\'' | '"' | '\\') {
                        delim.push(c[i]);
                    }
                    i += 1;
                }
                if delim.is_empty() {
                    return Err(format!("line {line}: a here-document without a delimiter"));
                }
                heredocs.push((delim, strip_tabs, line));
                word.push('\u{1}');
            }
            ';' | '&' | '|' | '(' | ')' => {
                // `2>&1`, `>&2`, `<&3`: part of a redirection word.
                if ch == '&' && matches!(word.chars().last(), Some('>') | Some('<')) {
                    word.push(ch);
                    i += 1;
                    continue;
                }
                flush(&mut word, word_line, &mut out);
                let two = c.get(i + 1) == Some(&ch);
                let op = match (ch, two) {
                    (';', true) => ";;",
                    (';', false) => ";",
                    ('&', true) => "&&",
                    ('&', false) => "&",
                    ('|', true) => "||",
                    ('|', false) => "|",
                    ('(', _) => "(",
                    _ => ")",
                };
                out.push((Tok::Op(op), line));
                i += op.len();
            }
            _ => {
                word.push(ch);
                i += 1;
            }
        }
    }
    flush(&mut word, word_line, &mut out);
    Ok(out)
}

/// Index after the quoted text starting at `c[i]` (`'`, `"` or a backquote).
fn skip_quoted(c: &[char], mut i: usize, line: &mut usize) -> Result<usize, String> {
    let q = c[i];
    let start = *line;
    i += 1;
    while i < c.len() {
        match c[i] {
            '\n' => *line += 1,
            '\\' if q != '\'' => {
                if c.get(i + 1) == Some(&'\n') {
                    *line += 1;
                }
                i += 1;
            }
            '$' if q == '"' && matches!(c.get(i + 1), Some('(') | Some('{')) => {
                i = skip_nested(c, i + 1, line)?;
                continue;
            }
            ch if ch == q => return Ok(i + 1),
            _ => {}
        }
        i += 1;
    }
    Err(format!("line {start}: unterminated {q}"))
}

/// Index after the `( ... )` or `{ ... }` opening at `c[i]`, quotes inside included.
fn skip_nested(c: &[char], mut i: usize, line: &mut usize) -> Result<usize, String> {
    let (open, close) = if c[i] == '(' { ('(', ')') } else { ('{', '}') };
    let start = *line;
    let mut depth = 0;
    while i < c.len() {
        match c[i] {
            '\n' => *line += 1,
            '\\' => i += 1,
            '\'' | '"' | '`' => {
                i = skip_quoted(c, i, line)?;
                continue;
            }
            ch if ch == open => depth += 1,
            ch if ch == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("line {start}: unterminated {open}"))
}

#[derive(Debug)]
enum Block {
    If,
    Case,
    /// `{ }` or `( )`; `conditioned` when it follows `&&` or `||`.
    Group {
        conditioned: bool,
    },
}

/// The lines of `src` with a `ktap_ok` outside any condition, or why `src` could not be read.
fn unconditional_oks(src: &str) -> Result<Vec<usize>, String> {
    let toks = tokenize(src)?;
    let mut found = Vec::new();
    let mut stack: Vec<Block> = Vec::new();
    let mut cmd_start = true;
    let mut after_andor = false;
    // After `case` (before its `in`) and in a case arm's pattern (before its `)`).
    let mut case_head = false;
    let mut in_pattern = false;
    let mut prev: Option<&Tok> = None;
    for (k, (tok, line)) in toks.iter().enumerate() {
        let next = toks.get(k + 1).map(|(t, _)| t);
        match tok {
            Tok::Newline => {
                // A line ending in `&&`, `||` or `|` goes on on the next one.
                if !matches!(prev, Some(Tok::Op("&&" | "||" | "|"))) && !case_head {
                    after_andor = false;
                    cmd_start = true;
                }
            }
            Tok::Word(w) if case_head => {
                if w == "in" {
                    case_head = false;
                    in_pattern = true;
                }
            }
            Tok::Word(w) if in_pattern => {
                if w == "esac" {
                    in_pattern = false;
                    pop(&mut stack, |b| matches!(b, Block::Case), "esac", *line)?;
                    cmd_start = false;
                }
            }
            Tok::Word(w) if cmd_start => {
                match w.as_str() {
                    "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" => {
                        if w == "if" {
                            stack.push(Block::If);
                        }
                        after_andor = after_andor && w == "!";
                        cmd_start = true;
                    }
                    "fi" => {
                        pop(&mut stack, |b| matches!(b, Block::If), "fi", *line)?;
                        cmd_start = false;
                    }
                    "case" => {
                        stack.push(Block::Case);
                        case_head = true;
                        cmd_start = false;
                    }
                    "esac" => {
                        pop(&mut stack, |b| matches!(b, Block::Case), "esac", *line)?;
                        cmd_start = false;
                    }
                    "{" => {
                        stack.push(Block::Group {
                            conditioned: after_andor,
                        });
                        after_andor = false;
                    }
                    "}" => {
                        pop(&mut stack, |b| matches!(b, Block::Group { .. }), "}", *line)?;
                        cmd_start = false;
                    }
                    "done" => cmd_start = false,
                    // `VAR=value command`: the command comes next.
                    _ if is_assignment(w) => {}
                    _ => {
                        let definition = next == Some(&Tok::Op("("));
                        if w == "ktap_ok" && !definition {
                            let conditional = after_andor
                                || stack.iter().any(|b| match b {
                                    Block::If | Block::Case => true,
                                    Block::Group { conditioned } => *conditioned,
                                });
                            if !conditional {
                                found.push(*line);
                            }
                        }
                        cmd_start = false;
                    }
                }
            }
            Tok::Word(_) => {}
            Tok::Op(op) => match *op {
                "&&" | "||" => {
                    after_andor = true;
                    cmd_start = true;
                }
                "|" => cmd_start = true,
                ";" | "&" => {
                    after_andor = false;
                    cmd_start = true;
                }
                ";;" => {
                    after_andor = false;
                    in_pattern = true;
                }
                "(" if in_pattern => {}
                "(" if matches!(prev, Some(Tok::Word(_))) && next == Some(&Tok::Op(")")) => {
                    // `name()`: a function definition; its body follows.
                }
                "(" => {
                    stack.push(Block::Group {
                        conditioned: after_andor,
                    });
                    after_andor = false;
                    cmd_start = true;
                }
                ")" if in_pattern => {
                    in_pattern = false;
                    cmd_start = true;
                }
                ")" if matches!(prev, Some(Tok::Op("("))) => {
                    // The end of `name()`: the body (`{ ... }`) is a command.
                    after_andor = false;
                    cmd_start = true;
                }
                _ => {
                    pop(&mut stack, |b| matches!(b, Block::Group { .. }), ")", *line)?;
                    cmd_start = false;
                }
            },
        }
        prev = Some(tok);
    }
    if let Some(b) = stack.last() {
        return Err(format!("unclosed {b:?} at the end"));
    }
    Ok(found)
}

fn pop(
    stack: &mut Vec<Block>,
    want: impl Fn(&Block) -> bool,
    what: &str,
    line: usize,
) -> Result<(), String> {
    match stack.pop() {
        Some(b) if want(&b) => Ok(()),
        other => Err(format!("line {line}: `{what}` closes {other:?}")),
    }
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

fn shell_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tests");
    let mut files = Vec::new();
    for dir in ["scenarios", "lib"] {
        let dir = root.join(dir);
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "sh") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_ktap_ok_comes_from_a_check_that_can_fail() {
    let files = shell_files();
    assert!(files.len() > 40, "too few scripts found: {files:?}");
    let mut problems = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let name = f
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .unwrap_or(f)
            .display()
            .to_string();
        match unconditional_oks(&src) {
            Ok(lines) => problems.extend(lines.into_iter().map(|l| {
                format!(
                    "{name}:{l}: ktap_ok outside a condition (use ktap_check, or an if/case branch, or `cond && ktap_ok`): {}",
                    src.lines().nth(l - 1).unwrap_or("").trim()
                )
            })),
            Err(e) => problems.push(format!("{name}: the lint cannot read it: {e}")),
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn a_bare_ktap_ok_is_caught() {
    assert_eq!(
        unconditional_oks("ktap_begin 1\nktap_ok x\nktap_end\n"),
        Ok(vec![2])
    );
    assert_eq!(unconditional_oks("echo hi; ktap_ok x\n"), Ok(vec![1]));
    // Before `&&` it still runs unconditionally; so does a pipeline's second command.
    assert_eq!(unconditional_oks("ktap_ok x && echo y\n"), Ok(vec![1]));
    assert_eq!(unconditional_oks("true | ktap_ok x\n"), Ok(vec![1]));
    // After the `if` block, and in a loop or a function body, it is bare again.
    assert_eq!(
        unconditional_oks(
            "if a; then b; fi\nktap_ok x\nwhile c; do ktap_ok y; done\nf() {\n    ktap_ok z\n}\n"
        ),
        Ok(vec![2, 3, 5])
    );
    // A condition of an earlier line does not carry over; quoted or commented words are no keywords.
    assert_eq!(
        unconditional_oks("a &&\n    b\nktap_ok x\necho \"if\"; ktap_ok y # if\n"),
        Ok(vec![3, 4])
    );
    assert_eq!(
        unconditional_oks("out=$(a 2>&1 || b)\nktap_ok x\n"),
        Ok(vec![2])
    );
    // A here-document's body is text, not commands; the lines after it are counted right.
    assert_eq!(
        unconditional_oks("while read -r a; do :; done <<EOF\nktap_ok x\nif\nEOF\nktap_ok y\n"),
        Ok(vec![5])
    );
}

#[test]
fn a_ktap_ok_in_a_condition_is_allowed() {
    for ok in [
        "if cond; then ktap_ok x; else ktap_fail x why; fi\n",
        "if cond; then\n    ktap_ok x\nelse\n    ktap_fail x why\nfi\n",
        "if a; then :; elif b; then ktap_ok x; fi\n",
        "if a; then b; else ktap_ok x; fi\n",
        "cond && ktap_ok x || ktap_fail x why\n",
        "cond \\\n    && ktap_ok x || ktap_fail x why\n",
        "cond &&\n    ktap_ok x\n",
        "cond && { echo \"# $y\"; ktap_ok x; }\n",
        "case $v in a|b) ktap_ok x ;; *) ktap_fail x why ;; esac\n",
        "case \"$v\" in\n    (a) ktap_ok x ;;\nesac\n",
        "f() {\n    if \"$@\" >/dev/null 2>&1; then ktap_ok \"$1\"; else ktap_fail \"$1\" r; fi\n}\n",
        "ktap_ok() { KTAP_N=$((KTAP_N + 1)); echo \"ok $KTAP_N $1\"; }\n",
        "X=1 ktap_check x why [ \"$(cat f)\" = \"a b)\" ]\n",
        "for i in 1 2; do if [ $i = 1 ]; then ktap_ok x; fi; done\n",
    ] {
        assert_eq!(unconditional_oks(ok), Ok(vec![]), "{ok}");
    }
}

#[test]
fn what_the_lint_cannot_read_is_an_error_not_a_pass() {
    assert!(unconditional_oks("cat <<EOF\nktap_ok x\n").is_err());
    assert!(unconditional_oks("if a; then ktap_ok x\n").is_err());
    assert!(unconditional_oks("echo \"unterminated\n").is_err());
}
