//! A reader for bash command lines: what runs, where it sits in the text.
//!
//! Owns: splitting a command line into its simple commands ([`parse`]), with byte-exact
//! ranges, quote removal, leading assignments, redirections, pipeline positions and
//! nesting. Does not own: deciding what to rewrite (the PreToolUse handler) or what the
//! user's permission rules say ([`super::permissions`]).
//!
//! This is not a bash parser. It is a careful lexer with just enough grammar to know where
//! each simple command starts and ends: quoting (`'…'`, `"…"`, `$'…'`), backslash-newline,
//! comments, `$(…)`, `${…}`, `$((…))`, backticks, process substitution, subshells, groups,
//! `if`/`for`/`while`/`until`/`case`/function definitions, `[[ … ]]`, control operators,
//! redirections and heredocs. Whatever it cannot read with confidence (unbalanced quotes or
//! brackets, an unterminated heredoc, a stray keyword) makes [`parse`] return `None`, and
//! callers then leave the command alone: a rewrite that guesses wrong breaks a command
//! the agent meant to run.
//!
//! Commands inside `$(…)`, backticks, `<(…)`, subshells and compound bodies are listed too
//! (with [`Simple::depth`] > 0), because a permission check has to see every program that
//! would run.

use std::ops::Range;

/// A command line split into its simple commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    /// Every simple command, nested ones included, in the order they start in the text.
    pub commands: Vec<Simple>,
    /// A heredoc appears anywhere.
    pub heredoc: bool,
    /// Some command runs in the background (`&` as an operator, not `&&`, `&>`, `>&`).
    pub background: bool,
    /// A compound construct appears (`( )`, `{ }`, if/for/while/until/case, function
    /// definitions, `(( ))`).
    pub compound: bool,
    /// The body of a heredoc with an unquoted delimiter holds `$` or a backtick: bash
    /// expands it when the command runs, possibly running commands this reader does not list.
    pub heredoc_expands: bool,
}

/// One simple command: optional assignments, then words, with redirections anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Simple {
    /// Byte range of this simple command in the input (leading assignments and redirections
    /// included, surrounding spaces excluded).
    pub range: Range<usize>,
    /// Byte offset of the program word (after leading `NAME=value` assignments); `None`
    /// when there are only assignments/redirections.
    pub program_at: Option<usize>,
    /// Leading assignments as written (`FOO=1`, `BAR="a b"`).
    pub assignments: Vec<String>,
    /// Words after quote removal, assignments and redirections excluded:
    /// `["pytest", "-x", "a b.py"]`. Expansions are kept as written (`$HOME`, `$(date)`).
    pub words: Vec<String>,
    /// Byte range of each word of [`Simple::words`] in the input, quotes included.
    pub word_ranges: Vec<Range<usize>>,
    /// A word or an assignment holds an expansion kompress cannot know statically (`$VAR`,
    /// `$(…)`, `` `…` ``, `<(…)`, globs `*` `?` `[…]`, brace expansion `{a,b}`).
    pub dynamic: bool,
    /// Has redirections.
    pub redirected: bool,
    /// The redirections, in order.
    pub redirections: Vec<Redirection>,
    /// Index in its pipeline and the pipeline's length: (0, 1) for a command alone.
    pub pipe: (usize, usize),
    /// Nesting: 0 at top level; >0 inside `( )`, `{ }`, `$( )`, backticks, or a compound
    /// command's body.
    pub depth: usize,
}

impl Simple {
    /// The program word after quote removal, when there is one.
    pub fn program(&self) -> Option<&str> {
        self.program_at?;
        self.words.first().map(String::as_str)
    }
}

/// One redirection of a simple command: `2>&1`, `> out.txt`, `<<EOF`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirection {
    /// Byte range in the input, from the fd number (if any) to the end of the target word.
    pub range: Range<usize>,
    /// The explicit file descriptor (`2` in `2>&1`).
    pub fd: Option<u32>,
    /// The operator: `>`, `>>`, `>|`, `<`, `<>`, `<&`, `>&`, `&>`, `&>>`, `<<`, `<<-`, `<<<`.
    pub op: String,
    /// The target after quote removal (a file, an fd, `-`, or a heredoc's delimiter).
    pub target: String,
}

impl Redirection {
    /// Whether this redirection writes to a file (not `/dev/null`, not an fd duplication).
    pub fn writes_file(&self) -> bool {
        let duplicates = matches!(self.op.as_str(), ">&" | "<&")
            && (self.target == "-" || self.target.bytes().all(|b| b.is_ascii_digit()));
        matches!(
            self.op.as_str(),
            ">" | ">>" | ">|" | "<>" | "&>" | "&>>" | ">&"
        ) && !duplicates
            && self.target != "/dev/null"
    }
}

/// Split `command` into its simple commands. `None` when the line cannot be read
/// (unbalanced quotes or parentheses, unterminated heredoc, a keyword out of place…):
/// callers then do nothing.
pub fn parse(command: &str) -> Option<Line> {
    let mut parser = Parser::new(command);
    if parser.list(0)? != Term::Eof || !parser.pending.is_empty() {
        return None;
    }
    let mut line = parser.line;
    line.commands.sort_by_key(|c| c.range.start);
    Some(line)
}

/// What ended a list of commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Term {
    Eof,
    /// `)`, consumed.
    Paren,
    /// `;;`, `;&` or `;;&`, consumed.
    CaseEnd,
    /// A reserved word that closes or continues a compound command, consumed.
    Word(&'static str),
}

/// Reserved words that end the list before them.
const CLOSERS: [&str; 8] = ["}", "then", "elif", "else", "fi", "do", "done", "esac"];

/// A heredoc whose body starts after the next newline.
#[derive(Debug)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    quoted: bool,
}

/// One word as lexed.
#[derive(Debug, Default)]
struct Word {
    text: String,
    range: Range<usize>,
    dynamic: bool,
    /// No quotes, escapes or expansions: a candidate reserved word.
    plain: bool,
}

/// Bash's metacharacters: they end a word.
fn is_meta(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t' | b'\n' | b'|' | b'&' | b';' | b'(' | b')' | b'<' | b'>'
    )
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// `NAME=`, `NAME+=` or `NAME[…]=` at the start of a raw word, unquoted.
fn is_assignment(raw: &str) -> bool {
    let Some(eq) = raw.find('=') else {
        return false;
    };
    let name = raw[..eq].strip_suffix('+').unwrap_or(&raw[..eq]);
    let name = match name.find('[') {
        Some(open) if name.ends_with(']') => &name[..open],
        Some(_) => return false,
        None => name,
    };
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: Line,
    pending: Vec<Heredoc>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: Line::default(),
            pending: Vec::new(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn at(&self, text: &str) -> bool {
        self.src[self.pos..].starts_with(text)
    }

    /// The char at the cursor (whole, for non-ASCII text).
    fn char_here(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    /// The literal word at the cursor, when it is made of plain characters only and ends at
    /// a metacharacter or the end: what a reserved word looks like.
    fn peek_plain(&self) -> Option<&'a str> {
        let rest = &self.bytes[self.pos..];
        let len = rest
            .iter()
            .position(|&b| is_meta(b) || matches!(b, b'\'' | b'"' | b'\\' | b'$' | b'`'))
            .unwrap_or(rest.len());
        if len == 0 || rest.get(len).is_some_and(|&b| !is_meta(b)) {
            return None;
        }
        Some(&self.src[self.pos..self.pos + len])
    }

    /// Spaces, tabs and line continuations.
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(b) if is_blank(b) => self.pos += 1,
                Some(b'\\') if self.peek_at(1) == Some(b'\n') => self.pos += 2,
                _ => return,
            }
        }
    }

    /// Blanks, newlines and comments between commands.
    fn skip_gaps(&mut self) -> Option<()> {
        loop {
            self.skip_blanks();
            match self.peek() {
                Some(b'#') => {
                    let rest = &self.src[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                Some(b'\n') => self.newline()?,
                _ => return Some(()),
            }
        }
    }

    /// Consume a newline; the bodies of pending heredocs follow it.
    fn newline(&mut self) -> Option<()> {
        self.pos += 1;
        for doc in std::mem::take(&mut self.pending) {
            loop {
                if self.pos >= self.src.len() {
                    return None;
                }
                let rest = &self.src[self.pos..];
                let (line, next) = match rest.find('\n') {
                    Some(end) => (&rest[..end], self.pos + end + 1),
                    None => (rest, self.src.len()),
                };
                self.pos = next;
                let compared = if doc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if compared == doc.delimiter {
                    break;
                }
                if !doc.quoted && (line.contains('$') || line.contains('`')) {
                    self.line.heredoc_expands = true;
                }
            }
        }
        Some(())
    }

    /// A list of and-or lists separated by `;`, `&` or newlines, up to what ends it.
    fn list(&mut self, depth: usize) -> Option<Term> {
        loop {
            self.skip_gaps()?;
            let Some(byte) = self.peek() else {
                return Some(Term::Eof);
            };
            match byte {
                b')' => {
                    self.pos += 1;
                    return Some(Term::Paren);
                }
                b';' if self.at(";;") || self.at(";&") => {
                    self.pos += if self.at(";;&") { 3 } else { 2 };
                    return Some(Term::CaseEnd);
                }
                b';' | b'&' | b'|' => return None,
                _ => {}
            }
            if let Some(word) = self.peek_plain()
                && let Some(&closer) = CLOSERS.iter().find(|&&c| c == word)
            {
                self.pos += closer.len();
                return Some(Term::Word(closer));
            }
            self.and_or(depth)?;
            self.skip_blanks();
            match self.peek() {
                None | Some(b'\n' | b'#' | b')') => {}
                Some(b';') if self.at(";;") || self.at(";&") => {}
                Some(b';') => self.pos += 1,
                Some(b'&') => {
                    self.pos += 1;
                    self.line.background = true;
                }
                Some(_) => return None,
            }
        }
    }

    /// Pipelines joined by `&&` and `||`.
    fn and_or(&mut self, depth: usize) -> Option<()> {
        self.pipeline(depth)?;
        loop {
            self.skip_blanks();
            if !(self.at("&&") || self.at("||")) {
                return Some(());
            }
            self.pos += 2;
            self.skip_gaps()?;
            self.pipeline(depth)?;
        }
    }

    /// Commands joined by `|` and `|&`, after optional `!` and `time [-p]`.
    fn pipeline(&mut self, depth: usize) -> Option<()> {
        loop {
            self.skip_blanks();
            match self.peek_plain() {
                Some("!") => self.pos += 1,
                Some("time") => {
                    self.pos += 4;
                    self.skip_blanks();
                    if self.peek_plain() == Some("-p") {
                        self.pos += 2;
                    }
                }
                _ => break,
            }
        }
        let mut members = vec![self.command(depth)?];
        loop {
            self.skip_blanks();
            if self.at("||") {
                break;
            } else if self.at("|&") {
                self.pos += 2;
            } else if self.at("|") {
                self.pos += 1;
            } else {
                break;
            }
            self.skip_gaps()?;
            members.push(self.command(depth)?);
        }
        let count = members.len();
        for (index, member) in members.into_iter().enumerate() {
            if let Some(at) = member {
                self.line.commands[at].pipe = (index, count);
            }
        }
        Some(())
    }

    /// Expect a list ended by `term`.
    fn body(&mut self, depth: usize, term: Term) -> Option<()> {
        (self.list(depth)? == term).then_some(())
    }

    /// One command: compound or simple. `Some(Some(i))`: the simple command at index `i`.
    fn command(&mut self, depth: usize) -> Option<Option<usize>> {
        self.skip_blanks();
        let inner = depth + 1;
        if self.at("((") {
            self.line.compound = true;
            self.pos += 2;
            self.arith(inner)?;
            return self.trailing_redirections(depth).map(|()| None);
        }
        if self.peek() == Some(b'(') {
            self.line.compound = true;
            self.pos += 1;
            self.body(inner, Term::Paren)?;
            return self.trailing_redirections(depth).map(|()| None);
        }
        let keyword = self.peek_plain();
        match keyword {
            Some("{") => {
                self.line.compound = true;
                self.pos += 1;
                self.body(inner, Term::Word("}"))?;
            }
            Some("if") => {
                self.line.compound = true;
                self.pos += 2;
                loop {
                    self.body(inner, Term::Word("then"))?;
                    match self.list(inner)? {
                        Term::Word("elif") => continue,
                        Term::Word("else") => {
                            self.body(inner, Term::Word("fi"))?;
                            break;
                        }
                        Term::Word("fi") => break,
                        _ => return None,
                    }
                }
            }
            Some(word @ ("while" | "until")) => {
                self.line.compound = true;
                self.pos += word.len();
                self.body(inner, Term::Word("do"))?;
                self.body(inner, Term::Word("done"))?;
            }
            Some(word @ ("for" | "select")) => {
                self.line.compound = true;
                self.pos += word.len();
                self.for_header(inner)?;
                self.skip_gaps()?;
                match self.peek_plain() {
                    Some("do") => {
                        self.pos += 2;
                        self.body(inner, Term::Word("done"))?;
                    }
                    Some("{") => {
                        self.pos += 1;
                        self.body(inner, Term::Word("}"))?;
                    }
                    _ => return None,
                }
            }
            Some("case") => {
                self.line.compound = true;
                self.pos += 4;
                self.case(inner)?;
            }
            Some("function") => {
                self.line.compound = true;
                self.pos += 8;
                self.skip_blanks();
                self.word(inner, false)?;
                self.skip_blanks();
                if self.peek() == Some(b'(') {
                    self.pos += 1;
                    self.skip_blanks();
                    (self.peek() == Some(b')')).then_some(())?;
                    self.pos += 1;
                }
                self.skip_gaps()?;
                self.command(inner)?;
                return Some(None);
            }
            Some("[[") => return self.conditional(depth).map(Some),
            _ => return self.simple(depth),
        }
        self.trailing_redirections(depth).map(|()| None)
    }

    /// `NAME [in WORDS] ;` or `((…;…;…))` after `for`/`select`.
    fn for_header(&mut self, depth: usize) -> Option<()> {
        self.skip_blanks();
        if self.at("((") {
            self.pos += 2;
            self.arith(depth)?;
        } else {
            self.word(depth, false)?;
            self.skip_gaps()?;
            if self.peek_plain() == Some("in") {
                self.pos += 2;
                loop {
                    self.skip_blanks();
                    match self.peek() {
                        None | Some(b'\n' | b';') => break,
                        Some(b) if is_meta(b) => return None,
                        Some(_) => {
                            self.word(depth, false)?;
                        }
                    }
                }
            }
        }
        self.skip_blanks();
        if self.peek() == Some(b';') {
            self.pos += 1;
        }
        Some(())
    }

    /// `WORD in (PATTERN) LIST ;; … esac` after `case`.
    fn case(&mut self, depth: usize) -> Option<()> {
        self.skip_blanks();
        self.word(depth, false)?;
        self.skip_gaps()?;
        (self.peek_plain() == Some("in")).then_some(())?;
        self.pos += 2;
        loop {
            self.skip_gaps()?;
            if self.peek_plain() == Some("esac") {
                self.pos += 4;
                return Some(());
            }
            if self.peek() == Some(b'(') {
                self.pos += 1;
            }
            loop {
                self.skip_blanks();
                match self.peek()? {
                    b')' => {
                        self.pos += 1;
                        break;
                    }
                    b'|' => self.pos += 1,
                    b if is_meta(b) => return None,
                    _ => {
                        self.word(depth, false)?;
                    }
                }
            }
            match self.list(depth)? {
                Term::CaseEnd => {}
                Term::Word("esac") => return Some(()),
                _ => return None,
            }
        }
    }

    /// `[[ … ]]`, listed as a simple command whose words run from `[[` to `]]`: inside it,
    /// `&&`, `||`, `<`, `>` and parentheses are operands, not shell syntax.
    fn conditional(&mut self, depth: usize) -> Option<usize> {
        let start = self.pos;
        self.pos += 2;
        let mut simple = Simple {
            program_at: Some(start),
            words: vec!["[[".into()],
            pipe: (0, 1),
            depth,
            ..Simple::default()
        };
        simple.word_ranges.push(start..start + 2);
        loop {
            self.skip_blanks();
            match self.peek()? {
                b'\n' => {
                    self.newline()?;
                    continue;
                }
                b';' => return None,
                _ => {}
            }
            let word = self.word(depth, true)?;
            let end = word.plain && word.text == "]]";
            simple.dynamic |= word.dynamic;
            simple.words.push(word.text);
            simple.word_ranges.push(word.range);
            if end {
                break;
            }
        }
        simple.range = start..self.pos;
        self.trailing_redirections(depth)?;
        self.line.commands.push(simple);
        Some(self.line.commands.len() - 1)
    }

    /// Redirections after a compound command (`( … ) 2>&1`, `done < file`).
    fn trailing_redirections(&mut self, depth: usize) -> Option<()> {
        loop {
            self.skip_blanks();
            if self.redirection(depth)?.is_none() {
                return Some(());
            }
        }
    }

    /// A simple command, or a function definition `name () body`.
    fn simple(&mut self, depth: usize) -> Option<Option<usize>> {
        let mut simple = Simple {
            pipe: (0, 1),
            depth,
            ..Simple::default()
        };
        let mut range: Option<Range<usize>> = None;
        fn extend(range: &mut Option<Range<usize>>, part: &Range<usize>) {
            match range {
                Some(r) => r.end = part.end,
                None => *range = Some(part.clone()),
            }
        }
        loop {
            self.skip_blanks();
            let Some(byte) = self.peek() else { break };
            if byte == b'#' {
                break;
            }
            if let Some(redirection) = self.redirection(depth)? {
                extend(&mut range, &redirection.range);
                simple.redirected = true;
                simple.redirections.push(redirection);
                continue;
            }
            let substitution = (byte == b'<' || byte == b'>') && self.peek_at(1) == Some(b'(');
            if is_meta(byte) && !substitution {
                break;
            }
            let word = self.word(depth, false)?;
            extend(&mut range, &word.range);
            simple.dynamic |= word.dynamic;
            if simple.program_at.is_none() && is_assignment(&self.src[word.range.clone()]) {
                simple
                    .assignments
                    .push(self.src[word.range.clone()].to_string());
                continue;
            }
            simple.program_at.get_or_insert(word.range.start);
            simple.words.push(word.text);
            simple.word_ranges.push(word.range);
        }
        if self.peek() == Some(b'(') {
            // `name () compound-command`: a function definition.
            let definition = simple.words.len() == 1
                && simple.assignments.is_empty()
                && simple.redirections.is_empty();
            if !definition {
                return None;
            }
            self.pos += 1;
            self.skip_blanks();
            (self.peek() == Some(b')')).then_some(())?;
            self.pos += 1;
            self.line.compound = true;
            self.skip_gaps()?;
            self.command(depth + 1)?;
            return Some(None);
        }
        simple.range = range?;
        self.line.commands.push(simple);
        Some(Some(self.line.commands.len() - 1))
    }

    /// A redirection at the cursor, or `Some(None)` when there is none.
    fn redirection(&mut self, depth: usize) -> Option<Option<Redirection>> {
        let start = self.pos;
        let digits = self.bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let rest = &self.src[start + digits..];
        const OPS: [&str; 12] = [
            "<<<", "<<-", "<<", "<>", "<&", "<", ">>", ">|", ">&", ">", "&>>", "&>",
        ];
        let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
            return Some(None);
        };
        if (digits > 0 && op.starts_with('&')) || rest.starts_with("<(") || rest.starts_with(">(") {
            // In `2&>x` the `2` is a word; `<(…)` is a process substitution, a word.
            return Some(None);
        }
        let fd = if digits > 0 {
            Some(self.src[start..start + digits].parse().ok()?)
        } else {
            None
        };
        self.pos = start + digits + op.len();
        self.skip_blanks();
        let byte = self.peek()?;
        let substitution = (byte == b'<' || byte == b'>') && self.peek_at(1) == Some(b'(');
        if is_meta(byte) && !substitution {
            return None;
        }
        let word = self.word(depth, false)?;
        if op.starts_with("<<") && *op != "<<<" {
            let raw = &self.src[word.range.clone()];
            self.pending.push(Heredoc {
                delimiter: word.text.clone(),
                strip_tabs: *op == "<<-",
                quoted: raw.contains(['\'', '"', '\\']),
            });
            self.line.heredoc = true;
        }
        Some(Some(Redirection {
            range: start..self.pos,
            fd,
            op: (*op).to_string(),
            target: word.text,
        }))
    }

    /// One word, up to a metacharacter. In a `[[ ]]` (`cond`), only blanks, newlines and
    /// `;` end it.
    fn word(&mut self, depth: usize, cond: bool) -> Option<Word> {
        let start = self.pos;
        let mut word = Word {
            plain: true,
            ..Word::default()
        };
        if self.at("<(") || self.at(">(") {
            self.pos += 2;
            self.body(depth + 1, Term::Paren)?;
            word.text = self.src[start..self.pos].to_string();
            word.dynamic = true;
            word.plain = false;
            word.range = start..self.pos;
            return Some(word);
        }
        let (mut bracket, mut brace, mut brace_list) = (false, false, false);
        // The last unquoted character, for `@(…)` extended globs and `a=(…)` arrays.
        let mut last: Option<u8> = None;
        while let Some(byte) = self.peek() {
            let ends = if cond {
                is_blank(byte) || byte == b'\n' || byte == b';'
            } else {
                is_meta(byte)
            };
            if ends {
                let array = byte == b'(' && last == Some(b'=') && {
                    let raw = &self.src[start..self.pos];
                    is_assignment(raw) && raw.ends_with('=')
                };
                let extglob =
                    byte == b'(' && matches!(last, Some(b'?' | b'*' | b'+' | b'@' | b'!'));
                if !(array || extglob) {
                    break;
                }
                self.balanced(depth + 1)?;
                word.dynamic |= extglob;
                word.plain = false;
                word.text = self.src[start..self.pos].to_string();
                last = Some(b')');
                continue;
            }
            last = None;
            match byte {
                b'\\' => {
                    word.plain = false;
                    self.pos += 1;
                    match self.char_here() {
                        Some('\n') => self.pos += 1,
                        Some(c) => {
                            word.text.push(c);
                            self.pos += c.len_utf8();
                        }
                        None => word.text.push('\\'),
                    }
                }
                b'\'' => {
                    word.plain = false;
                    let close = self.src[self.pos + 1..].find('\'')?;
                    word.text
                        .push_str(&self.src[self.pos + 1..self.pos + 1 + close]);
                    self.pos += close + 2;
                }
                b'"' => {
                    word.plain = false;
                    self.pos += 1;
                    self.double_quoted(depth, &mut word.text, &mut word.dynamic)?;
                }
                b'$' => {
                    word.plain = false;
                    self.dollar(depth, &mut word.text, &mut word.dynamic)?;
                }
                b'`' => {
                    word.plain = false;
                    self.backtick(depth, &mut word.text)?;
                    word.dynamic = true;
                }
                _ => {
                    match byte {
                        b'*' | b'?' => word.dynamic = true,
                        b'[' => bracket = true,
                        b']' if bracket => word.dynamic = true,
                        b'{' => brace = true,
                        b',' if brace => brace_list = true,
                        b'.' if brace && self.peek_at(1) == Some(b'.') => brace_list = true,
                        b'}' if brace_list => word.dynamic = true,
                        _ => {}
                    }
                    let c = self.char_here()?;
                    word.text.push(c);
                    self.pos += c.len_utf8();
                    last = Some(byte);
                }
            }
        }
        (self.pos > start).then_some(())?;
        word.range = start..self.pos;
        Some(word)
    }

    /// Step over one unit of nested text where only the closing bracket matters: an
    /// escape, a quoted string, an expansion, or one byte.
    fn skip_unit(&mut self, depth: usize, scratch: &mut String, dynamic: &mut bool) -> Option<()> {
        match self.peek()? {
            b'\\' => self.pos = (self.pos + 2).min(self.src.len()),
            b'\'' => self.pos += self.src[self.pos + 1..].find('\'')? + 2,
            b'"' => {
                self.pos += 1;
                self.double_quoted(depth, scratch, dynamic)?;
            }
            b'$' => self.dollar(depth, scratch, dynamic)?,
            b'`' => self.backtick(depth, scratch)?,
            _ => self.pos += 1,
        }
        Some(())
    }

    /// Skip a parenthesised group starting at the cursor (`(`), quotes respected.
    fn balanced(&mut self, depth: usize) -> Option<()> {
        let mut level = 0usize;
        let mut scratch = String::new();
        let mut dynamic = false;
        loop {
            match self.peek()? {
                b'(' => {
                    level += 1;
                    self.pos += 1;
                }
                b')' => {
                    self.pos += 1;
                    level -= 1;
                    if level == 0 {
                        return Some(());
                    }
                }
                _ => self.skip_unit(depth, &mut scratch, &mut dynamic)?,
            }
        }
    }

    /// The inside of `"…"`, the cursor after the opening quote; quote removed into `text`.
    fn double_quoted(&mut self, depth: usize, text: &mut String, dynamic: &mut bool) -> Option<()> {
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => match self.peek_at(1) {
                    Some(b'\n') => self.pos += 2,
                    Some(b @ (b'$' | b'`' | b'"' | b'\\')) => {
                        text.push(b as char);
                        self.pos += 2;
                    }
                    _ => {
                        text.push('\\');
                        self.pos += 1;
                    }
                },
                b'$' if matches!(self.peek_at(1), Some(b'\'' | b'"')) => {
                    text.push('$');
                    self.pos += 1;
                }
                b'$' => self.dollar(depth, text, dynamic)?,
                b'`' => {
                    self.backtick(depth, text)?;
                    *dynamic = true;
                }
                _ => {
                    let c = self.char_here()?;
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// Whatever starts with `$` at the cursor. Expansions go into `text` as written.
    fn dollar(&mut self, depth: usize, text: &mut String, dynamic: &mut bool) -> Option<()> {
        let start = self.pos;
        match self.peek_at(1) {
            Some(b'\'') => {
                self.pos += 2;
                return self.ansi_c(text);
            }
            Some(b'"') => {
                self.pos += 2;
                return self.double_quoted(depth, text, dynamic);
            }
            Some(b'(') if self.peek_at(2) == Some(b'(') => {
                self.pos += 3;
                self.arith(depth + 1)?;
            }
            Some(b'(') => {
                self.pos += 2;
                self.body(depth + 1, Term::Paren)?;
            }
            Some(b'{') => {
                self.pos += 2;
                self.braced(depth + 1)?;
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                self.pos += 1;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    self.pos += 1;
                }
            }
            Some(b'0'..=b'9' | b'@' | b'*' | b'#' | b'?' | b'$' | b'!' | b'-') => self.pos += 2,
            _ => {
                text.push('$');
                self.pos += 1;
                return Some(());
            }
        }
        *dynamic = true;
        text.push_str(&self.src[start..self.pos]);
        Some(())
    }

    /// The inside of `$'…'`, escapes decoded.
    fn ansi_c(&mut self, text: &mut String) -> Option<()> {
        loop {
            match self.peek()? {
                b'\'' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.char_here()?;
                    self.pos += c.len_utf8();
                    let decoded = match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\x07',
                        'b' => '\x08',
                        'e' | 'E' => '\x1b',
                        'f' => '\x0c',
                        'v' => '\x0b',
                        '0'..='7' => {
                            let mut value = c.to_digit(8)?;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            char::from_u32(value)?
                        }
                        'x' => {
                            let digits = self.bytes[self.pos..]
                                .iter()
                                .take(2)
                                .take_while(|b| b.is_ascii_hexdigit())
                                .count();
                            if digits == 0 {
                                text.push('\\');
                                'x'
                            } else {
                                let hex = &self.src[self.pos..self.pos + digits];
                                self.pos += digits;
                                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
                            }
                        }
                        '\\' | '\'' | '"' | '?' => c,
                        other => {
                            text.push('\\');
                            other
                        }
                    };
                    text.push(decoded);
                }
                _ => {
                    let c = self.char_here()?;
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// The inside of `${…}`, the cursor after the brace.
    fn braced(&mut self, depth: usize) -> Option<()> {
        let mut scratch = String::new();
        let mut dynamic = false;
        loop {
            match self.peek()? {
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.skip_unit(depth, &mut scratch, &mut dynamic)?,
            }
        }
    }

    /// The inside of `((…))` or `$((…))`, the cursor after the opening parentheses.
    fn arith(&mut self, depth: usize) -> Option<()> {
        let mut level = 0usize;
        let mut scratch = String::new();
        let mut dynamic = false;
        loop {
            match self.peek()? {
                b'(' => {
                    level += 1;
                    self.pos += 1;
                }
                b')' if level == 0 => {
                    (self.peek_at(1) == Some(b')')).then_some(())?;
                    self.pos += 2;
                    return Some(());
                }
                b')' => {
                    level -= 1;
                    self.pos += 1;
                }
                _ => self.skip_unit(depth, &mut scratch, &mut dynamic)?,
            }
        }
    }

    /// A backtick substitution at the cursor: its text (escapes undone) is read as a line
    /// of its own, and its commands are listed with ranges mapped back to this input.
    fn backtick(&mut self, depth: usize, text: &mut String) -> Option<()> {
        let start = self.pos;
        self.pos += 1;
        let mut inner = String::new();
        // Input offset of each byte of `inner`, plus one past the end.
        let mut map = Vec::new();
        loop {
            match self.peek()? {
                b'`' => {
                    map.push(self.pos);
                    self.pos += 1;
                    break;
                }
                b'\\' if matches!(self.peek_at(1), Some(b'`' | b'$' | b'\\')) => {
                    map.push(self.pos + 1);
                    inner.push(self.bytes[self.pos + 1] as char);
                    self.pos += 2;
                }
                _ => {
                    let c = self.char_here()?;
                    map.extend(self.pos..self.pos + c.len_utf8());
                    inner.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        text.push_str(&self.src[start..self.pos]);
        let mut sub = Parser::new(&inner);
        if sub.list(depth + 1)? != Term::Eof || !sub.pending.is_empty() {
            return None;
        }
        let end = |offset: usize| {
            if offset == 0 {
                map[0]
            } else {
                map[offset - 1] + 1
            }
        };
        let span = |r: &Range<usize>| map[r.start]..end(r.end);
        for mut command in sub.line.commands {
            command.range = span(&command.range);
            command.program_at = command.program_at.map(|at| map[at]);
            command.word_ranges = command.word_ranges.iter().map(span).collect();
            for redirection in &mut command.redirections {
                redirection.range = span(&redirection.range);
            }
            self.line.commands.push(command);
        }
        self.line.heredoc |= sub.line.heredoc;
        self.line.background |= sub.line.background;
        self.line.compound |= sub.line.compound;
        self.line.heredoc_expands |= sub.line.heredoc_expands;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(command: &str) -> Line {
        parse(command).unwrap_or_else(|| panic!("cannot read {command:?}"))
    }

    /// The words of each simple command, in order.
    fn words(command: &str) -> Vec<Vec<String>> {
        line(command)
            .commands
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    /// The text of each simple command's range.
    fn texts(command: &str) -> Vec<&str> {
        line(command)
            .commands
            .iter()
            .map(|c| &command[c.range.clone()])
            .collect()
    }

    #[test]
    fn one_command_and_its_words() {
        let parsed = line("  pytest -x 'a b.py'  ");
        assert_eq!(parsed.commands.len(), 1);
        let simple = &parsed.commands[0];
        assert_eq!(simple.words, ["pytest", "-x", "a b.py"]);
        assert_eq!(simple.range, 2..20);
        assert_eq!(simple.program_at, Some(2));
        assert_eq!(simple.program(), Some("pytest"));
        assert_eq!(simple.pipe, (0, 1));
        assert_eq!(simple.depth, 0);
        assert!(!simple.dynamic && !simple.redirected);
        assert_eq!(simple.word_ranges[2], 12..20);
        assert!(!parsed.compound && !parsed.background && !parsed.heredoc);
    }

    #[test]
    fn quoting() {
        assert_eq!(
            words(r#"echo "a b" 'c d' e\ f"#),
            [["echo", "a b", "c d", "e f"]]
        );
        assert_eq!(words(r#"echo "x\"y\\z\q""#), [["echo", r#"x"y\z\q"#]]);
        assert_eq!(words(r"echo 'it\'"), [["echo", r"it\"]]);
        assert_eq!(words(r"echo $'a\tb\n\x41\101\''"), [["echo", "a\tb\nAA'"]]);
        assert_eq!(words(r#"echo $"hi there""#), [["echo", "hi there"]]);
        assert_eq!(words(r#"echo "a"'b'c"#), [["echo", "abc"]]);
        assert_eq!(words(r#"echo "" ''"#), [["echo", "", ""]]);
        // Operators inside quotes are text.
        assert_eq!(
            words(r#"echo "a && b; c | d" 'e || f'"#),
            [["echo", "a && b; c | d", "e || f"]]
        );
    }

    #[test]
    fn escaped_spaces_and_continuations() {
        assert_eq!(words(r"cat my\ file.txt"), [["cat", "my file.txt"]]);
        assert_eq!(
            words("cargo test \\\n  --lib"),
            [["cargo", "test", "--lib"]]
        );
        assert_eq!(words("car\\\ngo"), [["cargo"]]);
        assert_eq!(words("echo \"a\\\nb\""), [["echo", "ab"]]);
    }

    #[test]
    fn chains() {
        let command = "cd src && cargo test || echo failed; make";
        let parsed = line(command);
        assert_eq!(
            texts(command),
            ["cd src", "cargo test", "echo failed", "make"]
        );
        assert!(
            parsed
                .commands
                .iter()
                .all(|c| c.pipe == (0, 1) && c.depth == 0)
        );
        assert_eq!(texts("a&&b||c;d"), ["a", "b", "c", "d"]);
    }

    #[test]
    fn pipelines() {
        let command = "cargo test 2>&1 | grep -v ok |& tail -n 5 && echo done";
        let parsed = line(command);
        let pipes: Vec<_> = parsed.commands.iter().map(|c| c.pipe).collect();
        assert_eq!(pipes, [(0, 3), (1, 3), (2, 3), (0, 1)]);
        assert_eq!(texts(command)[0], "cargo test 2>&1");
        assert_eq!(parsed.commands[0].words, ["cargo", "test"]);
        assert!(parsed.commands[0].redirected);
        let redirection = &parsed.commands[0].redirections[0];
        assert_eq!(
            (
                redirection.fd,
                redirection.op.as_str(),
                redirection.target.as_str()
            ),
            (Some(2), ">&", "1")
        );
        assert!(!redirection.writes_file());
        assert_eq!(parsed.commands[3].words, ["echo", "done"]);
    }

    #[test]
    fn comments() {
        assert_eq!(words("ls # list && rm -rf /"), [["ls"]]);
        assert_eq!(words("echo a#b"), [["echo", "a#b"]]);
        assert_eq!(words("echo '#x' \"#y\" \\#z"), [["echo", "#x", "#y", "#z"]]);
        assert_eq!(words("# only a comment"), Vec::<Vec<String>>::new());
        assert_eq!(words("a # one\n# two\nb"), [["a"], ["b"]]);
        assert_eq!(words("echo ${#x} $#"), [["echo", "${#x}", "$#"]]);
    }

    #[test]
    fn multi_line() {
        let command = "cd app\nnpm ci\n\n  npm test -- --watch=false\n";
        assert_eq!(
            texts(command),
            ["cd app", "npm ci", "npm test -- --watch=false"]
        );
    }

    #[test]
    fn heredocs() {
        let command = "cat <<EOF > out.txt\nhello $USER\n  EOF\nEOF\necho next";
        let parsed = line(command);
        assert!(parsed.heredoc && parsed.heredoc_expands);
        assert_eq!(texts(command), ["cat <<EOF > out.txt", "echo next"]);
        assert_eq!(parsed.commands[0].words, ["cat"]);
        assert_eq!(parsed.commands[0].redirections[0].target, "EOF");
        assert!(parsed.commands[0].redirections[1].writes_file());
        // Quoted delimiters do not expand; `<<-` strips leading tabs.
        let quoted = line("git commit -F - <<'MSG'\nfix: $(not run)\nMSG\n");
        assert!(quoted.heredoc && !quoted.heredoc_expands);
        assert_eq!(quoted.commands.len(), 1);
        let tabs = line("cat <<-END\n\tbody\n\tEND\nls");
        assert_eq!(tabs.commands.len(), 2);
        // Two heredocs on one line, bodies in order.
        let two = line("cat <<A; cat <<B\na\nA\nb\nB\nls");
        assert_eq!(two.commands.len(), 3);
        // The usual commit message shape: a heredoc inside $( ) inside double quotes.
        let commit = "git commit -m \"$(cat <<'EOF'\nSubject && more\n\nBody; text\nEOF\n)\"";
        assert_eq!(
            words(commit),
            [
                vec!["git", "commit", "-m", &commit[15..commit.len() - 1]],
                vec!["cat"]
            ]
        );
        assert_eq!(line(commit).commands[1].depth, 1);
        // Here-strings are not heredocs.
        let here = line("grep x <<< \"$text\"");
        assert!(!here.heredoc);
        assert_eq!(here.commands[0].redirections[0].op, "<<<");
    }

    #[test]
    fn unterminated_heredocs_are_unreadable() {
        assert_eq!(parse("cat <<EOF\nbody\n"), None);
        assert_eq!(parse("cat <<EOF"), None);
        assert_eq!(parse("cat <<EOF\nbody\nEOFX\n"), None);
    }

    #[test]
    fn redirections() {
        let command = "make >build.log 2>&1 <in &>all >|force 3<>rw 4>>app";
        let parsed = line(command);
        let simple = &parsed.commands[0];
        assert_eq!(simple.words, ["make"]);
        assert_eq!(simple.range, 0..command.len());
        let ops: Vec<_> = simple
            .redirections
            .iter()
            .map(|r| (r.fd, r.op.as_str(), r.target.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                (None, ">", "build.log"),
                (Some(2), ">&", "1"),
                (None, "<", "in"),
                (None, "&>", "all"),
                (None, ">|", "force"),
                (Some(3), "<>", "rw"),
                (Some(4), ">>", "app"),
            ]
        );
        assert!(!parsed.background);
        // A redirection before the program.
        let before = line(">log FOO=1 cmd arg");
        assert_eq!(before.commands[0].program_at, Some(11));
        assert_eq!(before.commands[0].words, ["cmd", "arg"]);
        assert_eq!(before.commands[0].assignments, ["FOO=1"]);
        // Only a redirection.
        let bare = line("> empty.txt");
        assert_eq!(bare.commands[0].program_at, None);
        assert_eq!(bare.commands[0].program(), None);
        assert!(
            !line("cmd >/dev/null 2>&1").commands[0]
                .redirections
                .iter()
                .any(Redirection::writes_file)
        );
        // A number that is not followed by a redirection is a word.
        assert_eq!(words("head -n 5 2 > x")[0], ["head", "-n", "5", "2"]);
        assert_eq!(parse("echo >"), None);
        assert_eq!(parse("echo > ;"), None);
    }

    #[test]
    fn background() {
        let parsed = line("npm run dev & sleep 2");
        assert!(parsed.background);
        assert_eq!(texts("npm run dev & sleep 2"), ["npm run dev", "sleep 2"]);
        assert!(!line("a && b").background);
        assert!(!line("a &> log").background);
        assert!(!line("a >& log").background);
        assert!(line("server &").background);
        assert!(line("(x &)").background);
    }

    #[test]
    fn subshells_and_groups() {
        let command = "(cd web && npm test) 2>&1 | tee log; { make; make install; } > out";
        let parsed = line(command);
        assert!(parsed.compound);
        assert_eq!(
            texts(command),
            ["cd web", "npm test", "tee log", "make", "make install"]
        );
        let depths: Vec<_> = parsed.commands.iter().map(|c| c.depth).collect();
        assert_eq!(depths, [1, 1, 0, 1, 1]);
        assert_eq!(parsed.commands[2].pipe, (1, 2));
        assert_eq!(words("{a,b}"), [["{a,b}"]]);
        assert!(line("echo {a,b}").commands[0].dynamic);
        assert!(!line("find . -exec rm {} +").commands[0].dynamic);
    }

    #[test]
    fn command_substitution() {
        let command = "echo \"today: $(date +%F)\" `whoami` $(ls $(pwd))";
        let parsed = line(command);
        assert_eq!(
            texts(command),
            [command, "date +%F", "whoami", "ls $(pwd)", "pwd"]
        );
        let depths: Vec<_> = parsed.commands.iter().map(|c| c.depth).collect();
        assert_eq!(depths, [0, 1, 1, 1, 2]);
        assert!(parsed.commands[0].dynamic);
        assert!(!parsed.compound);
        // Escapes inside backticks map back to the input.
        let command = r"echo `echo \`id\``";
        let parsed = line(command);
        assert_eq!(texts(command), [command, r"echo \`id\`", "id"]);
        assert_eq!(parsed.commands[2].depth, 2);
        // Arithmetic and parameter expansion.
        let command = "echo $((1 + $(nproc))) ${X:-$(pwd)} ${#arr[@]}";
        assert_eq!(texts(command)[1..], ["nproc", "pwd"]);
        assert_eq!(
            texts("diff <(sort a) <(sort b)"),
            ["diff <(sort a) <(sort b)", "sort a", "sort b"]
        );
        assert_eq!(
            texts("x=$(git rev-parse HEAD)"),
            ["x=$(git rev-parse HEAD)", "git rev-parse HEAD"]
        );
    }

    #[test]
    fn assignments() {
        let command = r#"FOO=1 BAR="a b" A[2]=x N+=1 cmd ARG=2"#;
        let parsed = line(command);
        let simple = &parsed.commands[0];
        assert_eq!(
            simple.assignments,
            ["FOO=1", r#"BAR="a b""#, "A[2]=x", "N+=1"]
        );
        assert_eq!(simple.words, ["cmd", "ARG=2"]);
        assert_eq!(simple.program_at, Some(command.find("cmd").unwrap()));
        let only = line("FOO=1 BAR=2");
        assert_eq!(only.commands[0].program_at, None);
        assert_eq!(only.commands[0].assignments.len(), 2);
        assert_eq!(
            line("arr=(a 'b c' d) cmd").commands[0].assignments,
            ["arr=(a 'b c' d)"]
        );
        // Not assignments: quoted names, names with odd characters.
        assert_eq!(words(r#""FOO"=1 x"#), [[r"FOO=1", "x"]]);
        assert_eq!(words("1A=2")[0], ["1A=2"]);
        assert_eq!(words("--opt=1")[0], ["--opt=1"]);
        assert!(line("X=$HOME cmd").commands[0].dynamic);
    }

    #[test]
    fn keywords() {
        let command = "if [ -f x ]; then make; elif true; then :; else echo no; fi";
        let parsed = line(command);
        assert!(parsed.compound);
        assert_eq!(texts(command), ["[ -f x ]", "make", "true", ":", "echo no"]);
        assert!(parsed.commands.iter().all(|c| c.depth == 1));
        let command = "for f in *.py $(ls); do pytest \"$f\"; done";
        assert_eq!(texts(command), ["ls", "pytest \"$f\""]);
        let command = "while read -r l; do echo \"$l\"; done < list.txt";
        assert_eq!(texts(command), ["read -r l", "echo \"$l\""]);
        let command = "until make; do sleep 1; done";
        assert_eq!(texts(command), ["make", "sleep 1"]);
        let command = "case $1 in a|b) echo ab;; (c) echo c;& *) echo other;; esac";
        assert_eq!(texts(command), ["echo ab", "echo c", "echo other"]);
        assert_eq!(texts("case x in esac"), Vec::<&str>::new());
        let command = "f() { echo hi; }; function g { ls; }; f";
        assert_eq!(texts(command), ["echo hi", "ls", "f"]);
        assert!(line(command).compound);
        let command = "for ((i=0; i<3; i++)); do echo $i; done";
        assert_eq!(texts(command), ["echo $i"]);
        assert!(line("(( n > 2 )) && echo big").compound);
        // `!` and `time` are not programs.
        let parsed = line("! time -p cargo build");
        assert_eq!(parsed.commands[0].words, ["cargo", "build"]);
        assert_eq!(parsed.commands[0].program_at, Some(10));
        // Keywords are only keywords at a command's start.
        assert_eq!(
            words("echo if then fi done"),
            [["echo", "if", "then", "fi", "done"]]
        );
        assert_eq!(words("timeout 5 make"), [["timeout", "5", "make"]]);
        // `[[ ]]`: operators inside are operands.
        let command = "[[ -n $x && $y < 3 ]] && make";
        let parsed = line(command);
        assert_eq!(texts(command), ["[[ -n $x && $y < 3 ]]", "make"]);
        assert_eq!(parsed.commands[0].words.len(), 8);
        assert!(!parsed.commands[0].redirected);
        assert!(!parsed.compound);
        assert_eq!(words("[[ $v =~ ^(a|b)$ ]]")[0][3], "^(a|b)$");
    }

    #[test]
    fn globs_and_expansions_are_dynamic() {
        let dynamic = |command: &str| line(command).commands[0].dynamic;
        assert!(dynamic("rm *.o"));
        assert!(dynamic("ls file?.txt"));
        assert!(dynamic("ls [ab].txt"));
        assert!(dynamic("echo $HOME"));
        assert!(dynamic("echo ${HOME}"));
        assert!(dynamic("echo \"$1\""));
        assert!(dynamic("ls !(x)"));
        assert!(!dynamic("echo '*' \"?\" \\[ '$HOME'"));
        assert!(!dynamic("[ -f x ]"));
        assert!(!dynamic("echo a$"));
        assert!(!dynamic("echo ~/x"));
    }

    #[test]
    fn unbalanced_input_is_unreadable() {
        for command in [
            "echo 'open",
            "echo \"open",
            "echo $(ls",
            "echo `ls",
            "echo ${x",
            "(cd x",
            "cd x)",
            "{ ls;",
            "if true; then ls",
            "for x in a; do ls",
            "case x in a) ls;;",
            "echo $((1 + 2)",
            "&& ls",
            "ls &&",
            "ls |",
            "ls ;;",
            "fi",
            "done",
            "ls ( x )",
            "| grep",
            "; ls",
        ] {
            assert_eq!(parse(command), None, "{command:?}");
        }
    }

    #[test]
    fn empty_and_blank_input() {
        assert_eq!(line("").commands, []);
        assert_eq!(line("  \n\t ").commands, []);
        assert_eq!(line("ls;").commands.len(), 1);
        assert_eq!(line("ls &&\n  make").commands.len(), 2);
        assert_eq!(line("ls |\n  wc").commands[1].pipe, (1, 2));
    }

    #[test]
    fn non_ascii() {
        let command = "echo 'héllo wörld' ünïcode && grep -r 日本 .";
        let parsed = line(command);
        assert_eq!(parsed.commands[0].words, ["echo", "héllo wörld", "ünïcode"]);
        assert_eq!(
            texts(command),
            ["echo 'héllo wörld' ünïcode", "grep -r 日本 ."]
        );
        assert_eq!(words("echo \\é `echo ü`")[0], ["echo", "é", "`echo ü`"]);
        assert_eq!(texts("echo `echo ü`")[1], "echo ü");
    }

    #[test]
    fn ranges_allow_inserting_before_the_program() {
        for command in [
            "pytest -x",
            "FOO=1 BAR='a b' pytest -x",
            "cd a && CI=1 npm test 2>&1 | tail -5",
            "time cargo test --lib",
            "(cd web; make)",
        ] {
            let parsed = line(command);
            for simple in &parsed.commands {
                let at = simple.program_at.unwrap();
                let rewritten = format!("{}kompress run -- {}", &command[..at], &command[at..]);
                let again = line(&rewritten);
                assert_eq!(again.commands.len(), parsed.commands.len(), "{rewritten}");
                let found = again
                    .commands
                    .iter()
                    .find(|c| c.range.start == simple.range.start)
                    .unwrap();
                assert_eq!(found.words[..3], ["kompress", "run", "--"]);
                assert_eq!(found.words[3..], simple.words[..], "{rewritten}");
                assert_eq!(found.assignments, simple.assignments);
            }
        }
    }

    /// Random lines from shell-heavy characters: no panic, and every range lies on char
    /// boundaries inside the input.
    #[test]
    fn never_panics_and_ranges_stay_inside() {
        let alphabet: Vec<char> = "ab $(){}[]`'\"\\;&|<>#\n\t=*?!0123-éif fi do done case esac in"
            .chars()
            .collect();
        let mut state = 0x2545_f491_u64;
        for _ in 0..20_000 {
            let mut command = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                command.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let Some(parsed) = parse(&command) else {
                continue;
            };
            for simple in &parsed.commands {
                assert!(command.get(simple.range.clone()).is_some(), "{command:?}");
                for range in &simple.word_ranges {
                    assert!(command.get(range.clone()).is_some(), "{command:?}");
                }
                if let Some(at) = simple.program_at {
                    assert!(simple.range.contains(&at), "{command:?}");
                }
            }
        }
    }
}
