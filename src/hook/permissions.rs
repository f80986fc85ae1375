//! The user's Claude Code permission rules for the Bash tool, evaluated as Claude Code does.
//!
//! Owns: reading `permissions.allow / ask / deny` from every settings scope ([`Permissions::load`])
//! and deciding what they say about one original command ([`Permissions::verdict`]). Does not
//! own: what the PreToolUse handler does with the verdict, or splitting the command (that is
//! [`super::shell`]).
//!
//! Why kompress needs this: Claude Code matches permission rules against the command a
//! PreToolUse hook rewrote, not the one the agent wrote (`claude-code-hooks.md` §4.2). A deny
//! rule on `git push` would stop firing after a rewrite, and an allow rule on `npm test` would
//! stop matching. So kompress evaluates the rules on the original command itself: on Deny it
//! does not rewrite, on Allow it may answer `allow`, otherwise it lets Claude Code ask.
//!
//! Rule semantics, from the official permissions page (code.claude.com/docs/en/permissions):
//!
//! - `Bash` and `Bash(*)` match every command. `Bash(npm run build)` matches exactly that
//!   command. A `*` matches any text, spaces included, anywhere in the rule; a trailing ` *`
//!   that is the rule's only wildcard also matches the bare command (`Bash(ls *)` matches
//!   `ls` but not `lsof`; `Bash(ls*)` matches both). `prefix:*` at the end is the legacy
//!   spelling of `prefix *`.
//! - Deny first, then ask, then allow; rules from every scope are merged, so a deny anywhere
//!   wins. `allowManagedPermissionRulesOnly` in managed settings limits rules to the managed
//!   source.
//! - Compound commands are split on `&&`, `||`, `;`, `|`, `|&`, `&` and newlines, and a rule
//!   must match each subcommand on its own: a deny or ask matches when any subcommand matches,
//!   an allow only when every subcommand is allowed.
//! - Before matching, the wrappers `timeout`, `time`, `nice`, `nohup`, `stdbuf`, `command`,
//!   `builtin`, `noglob` and bare `xargs` (no flags) are stripped, and a leading assignment of
//!   a known-safe variable (`NODE_ENV`). Deny and ask rules match past any leading assignment.
//! - Rules for other tools (`Read(…)`, `WebFetch(…)`, `mcp__…`) never match a Bash command.
//!
//! Where Claude Code's behaviour is undocumented, the answer here is the conservative one:
//! never an Allow the user did not give, never a missed Deny. A Deny or Ask that is wrong
//! costs only an uncompressed output; a wrong Allow skips a prompt the user wanted. So deny
//! and ask rules are matched against more readings of each subcommand (quotes removed,
//! every word after any wrapper, the whole line), and allow rules against fewer (no
//! compound constructs, no file redirections, no unknown program).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::shell::{self, Simple};

/// What the user's rules say about a command. The string is the rule that decided, as
/// written (for an Allow of a compound command, every allow rule that was needed, joined
/// with `, `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Deny(String),
    Ask(String),
    Allow(String),
    NoMatch,
}

/// Where a settings file comes from, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`).
    User,
    /// `<project>/.claude/settings.json`.
    Project,
    /// `<project>/.claude/settings.local.json`.
    Local,
    /// `managed-settings.json` and `managed-settings.d/*.json` in the system directory.
    Managed,
}

/// The Bash rules of every settings scope, merged.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    allow: Vec<Rule>,
    ask: Vec<Rule>,
    deny: Vec<Rule>,
}

/// The variables whose leading assignment Claude Code strips before matching allow rules.
/// Only the one the documentation names: another could give an Allow Claude Code would not.
pub const SAFE_ENV_VARS: [&str; 1] = ["NODE_ENV"];

/// The managed settings directory for this platform.
pub fn managed_dir() -> PathBuf {
    if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/ClaudeCode")
    } else {
        PathBuf::from("/etc/claude-code")
    }
}

/// The settings files Claude Code reads for `project_dir`, lowest precedence first. Managed
/// drop-ins (`managed-settings.d/*.json`, hidden files skipped) follow the main managed file
/// in name order, as Claude Code merges them.
pub fn settings_files(project_dir: &Path, managed_dir: &Path) -> Vec<(Scope, PathBuf)> {
    let mut files = Vec::new();
    if let Some(user) = crate::init::user_settings_path() {
        files.push((Scope::User, user));
    }
    let claude = project_dir.join(".claude");
    files.push((Scope::Project, claude.join("settings.json")));
    files.push((Scope::Local, claude.join("settings.local.json")));
    files.push((Scope::Managed, managed_dir.join("managed-settings.json")));
    if let Ok(entries) = std::fs::read_dir(managed_dir.join("managed-settings.d")) {
        let mut dropins: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".json") && !name.starts_with('.')
            })
            .collect();
        dropins.sort();
        files.extend(dropins.into_iter().map(|path| (Scope::Managed, path)));
    }
    files
}

/// Read settings files: missing ones are skipped silently, unreadable or invalid ones are
/// skipped and named in the returned problems.
pub fn read_settings(files: &[(Scope, PathBuf)]) -> (Vec<(Scope, Value)>, Vec<String>) {
    let mut settings = Vec::new();
    let mut problems = Vec::new();
    for (scope, path) in files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                problems.push(format!("cannot read {}: {error}", path.display()));
                continue;
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(value @ Value::Object(_)) => settings.push((*scope, value)),
            Ok(_) => problems.push(format!("{} is not a JSON object", path.display())),
            Err(error) => problems.push(format!("{} is not valid JSON: {error}", path.display())),
        }
    }
    (settings, problems)
}

/// Claude Code's global state file, which records trusted workspaces:
/// `$CLAUDE_CONFIG_DIR/.claude.json` or `~/.claude.json`.
pub fn global_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join(".claude.json"));
    }
    Some(
        directories::BaseDirs::new()?
            .home_dir()
            .join(".claude.json"),
    )
}

/// Whether the user accepted Claude Code's trust dialog for `project_dir` or a directory
/// above it (`projects.<path>.hasTrustDialogAccepted` in the global state file). Unknown
/// means untrusted: that can only take an allow away.
pub fn workspace_trusted(project_dir: &Path, global_config: Option<&Path>) -> bool {
    let Some(config) = global_config
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return false;
    };
    let Some(projects) = config.get("projects").and_then(Value::as_object) else {
        return false;
    };
    project_dir.ancestors().any(|dir| {
        dir.to_str()
            .and_then(|key| projects.get(key))
            .and_then(|p| p.get("hasTrustDialogAccepted"))
            == Some(&Value::Bool(true))
    })
}

/// Remove the allow rules of the project's shared settings.
fn drop_project_allows(settings: &mut [(Scope, Value)]) {
    for (scope, value) in settings {
        if *scope == Scope::Project
            && let Some(rules) = value.get_mut("permissions").and_then(Value::as_object_mut)
        {
            rules.shift_remove("allow");
        }
    }
}

impl Permissions {
    /// All settings scopes Claude Code reads, lowest to highest precedence: user
    /// (`$CLAUDE_CONFIG_DIR` or `~/.claude`)/settings.json, project
    /// `<project>/.claude/settings.json`, local `<project>/.claude/settings.local.json`,
    /// managed (`/etc/claude-code/managed-settings.json` on Linux,
    /// `/Library/Application Support/ClaudeCode/managed-settings.json` on macOS, plus their
    /// `managed-settings.d/`). Unreadable or invalid files are skipped and reported in the
    /// returned list of problems (the caller logs them).
    ///
    /// Claude Code drops the allow rules of `<project>/.claude/settings.json` while the
    /// workspace is not trusted (observed in 2.1.332: "Dropped 1 project-scoped
    /// permissions.allow entry — workspace not yet trusted"), so kompress does too
    /// ([`workspace_trusted`]).
    pub fn load(project_dir: &Path) -> (Permissions, Vec<String>) {
        let (mut settings, problems) = read_settings(&settings_files(project_dir, &managed_dir()));
        if !workspace_trusted(project_dir, global_config_path().as_deref()) {
            drop_project_allows(&mut settings);
        }
        (Permissions::from_scoped(&settings), problems)
    }

    /// The rules of several settings objects, merged. Managed-only switches are not honoured
    /// here (nothing says which object is managed): see [`Permissions::from_scoped`].
    pub fn from_settings(settings: &[Value]) -> Permissions {
        let mut permissions = Permissions::default();
        for value in settings {
            permissions.add(value, true);
        }
        permissions
    }

    /// The rules of settings objects with their scopes, merged. When a managed object sets
    /// `allowManagedPermissionRulesOnly`, allow rules from the other scopes are dropped, as
    /// Claude Code drops them; their ask and deny rules are kept, by choice: they can only
    /// make kompress leave a command alone.
    pub fn from_scoped(settings: &[(Scope, Value)]) -> Permissions {
        let managed_only = settings.iter().any(|(scope, value)| {
            *scope == Scope::Managed
                && value.get("allowManagedPermissionRulesOnly") == Some(&Value::Bool(true))
        });
        let mut permissions = Permissions::default();
        for (scope, value) in settings {
            permissions.add(value, !managed_only || *scope == Scope::Managed);
        }
        permissions
    }

    fn add(&mut self, settings: &Value, with_allow: bool) {
        let Some(rules) = settings.get("permissions") else {
            return;
        };
        let list = |key: &str| {
            rules
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        };
        if with_allow {
            self.allow
                .extend(list("allow").filter_map(|r| Rule::parse(r, Kind::Allow)));
        }
        self.ask
            .extend(list("ask").filter_map(|r| Rule::parse(r, Kind::Restrict)));
        self.deny
            .extend(list("deny").filter_map(|r| Rule::parse(r, Kind::Restrict)));
    }

    /// Whether no Bash rule was found.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.ask.is_empty() && self.deny.is_empty()
    }

    /// What the rules say about `command`, the command as the agent wrote it.
    pub fn verdict(&self, command: &str) -> Verdict {
        let Some(line) = shell::parse(command) else {
            return self.unreadable(command);
        };
        let subcommands: Vec<Sub> = line
            .commands
            .iter()
            .map(|simple| Sub {
                simple,
                src: command,
            })
            .collect();
        let mut loose = vec![command.trim().to_string()];
        for sub in &subcommands {
            loose.extend(sub.loose());
        }
        for (rules, verdict) in [
            (&self.deny, Verdict::Deny as fn(String) -> Verdict),
            (&self.ask, Verdict::Ask),
        ] {
            if let Some(rule) = rules
                .iter()
                .find(|rule| loose.iter().any(|text| rule.pattern.matches(text, true)))
            {
                return verdict(rule.written.clone());
            }
        }
        if let Some(rule) = self.allow.iter().find(|r| r.pattern == Pattern::All) {
            return Verdict::Allow(rule.written.clone());
        }
        if line.compound || line.heredoc_expands || subcommands.is_empty() {
            return Verdict::NoMatch;
        }
        let mut decided: Vec<&str> = Vec::new();
        for sub in &subcommands {
            let Some((candidates, anchored_only)) = sub.strict() else {
                return Verdict::NoMatch;
            };
            let rule = self.allow.iter().find(|rule| {
                (!anchored_only || rule.pattern.anchored())
                    && candidates
                        .iter()
                        .any(|text| rule.pattern.matches(text, false))
            });
            match rule {
                Some(rule) if !decided.contains(&rule.written.as_str()) => {
                    decided.push(&rule.written);
                }
                Some(_) => {}
                None => return Verdict::NoMatch,
            }
        }
        Verdict::Allow(decided.join(", "))
    }

    /// A command the shell reader cannot read: a deny or ask rule whose text appears anywhere
    /// in it decides; nothing is ever allowed.
    fn unreadable(&self, command: &str) -> Verdict {
        if let Some(rule) = self.deny.iter().find(|r| r.pattern.appears_in(command)) {
            return Verdict::Deny(rule.written.clone());
        }
        if let Some(rule) = self.ask.iter().find(|r| r.pattern.appears_in(command)) {
            return Verdict::Ask(rule.written.clone());
        }
        Verdict::NoMatch
    }
}

/// Which list a rule comes from: allow rules are read narrowly, ask and deny rules broadly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Allow,
    Restrict,
}

/// One Bash rule.
#[derive(Clone, Debug)]
struct Rule {
    /// As written in the settings file.
    written: String,
    pattern: Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// `Bash`, `Bash(*)`: every command.
    All,
    /// No wildcard: this command exactly.
    Exact(String),
    /// `prefix:*`: the legacy spelling of `prefix *`.
    Prefix(String),
    /// The literal pieces between `*`s (one more piece than wildcards).
    Wildcard(Vec<String>),
}

/// The tool-name glob of a deny or ask rule (`*`, `B*`) matches `Bash`.
fn tool_glob_matches_bash(tool: &str) -> bool {
    tool.contains('*') && Pattern::wildcard(tool).matches("Bash", false)
}

impl Rule {
    /// `None` for rules of other tools and malformed rules.
    fn parse(written: &str, kind: Kind) -> Option<Rule> {
        let rule = written.trim();
        let restrict = kind == Kind::Restrict;
        let (tool, specifier) = match rule.find('(') {
            None => (rule, None),
            Some(open) => (&rule[..open], Some(rule[open + 1..].strip_suffix(')')?)),
        };
        let bash = tool == "Bash" || (restrict && tool_glob_matches_bash(tool));
        if !bash {
            return None;
        }
        let pattern = match specifier {
            None => Pattern::All,
            // What Claude Code makes of `Bash()` is not documented: everything, for a deny.
            Some("") if restrict => Pattern::All,
            Some("") => return None,
            Some(specifier) => {
                // `Bash(command:…)` is ignored by Claude Code (it could be dodged by a
                // compound command); a deny or ask rule still says what the user wants kept.
                let specifier = match specifier.split_once(':') {
                    Some((name, value)) if name.trim() == "command" => {
                        if !restrict {
                            return None;
                        }
                        value.trim_start()
                    }
                    _ => specifier,
                };
                Pattern::parse(specifier)
            }
        };
        Some(Rule {
            written: written.to_string(),
            pattern,
        })
    }
}

impl Pattern {
    fn parse(specifier: &str) -> Pattern {
        if specifier == "*" {
            return Pattern::All;
        }
        if let Some(prefix) = specifier.strip_suffix(":*")
            && !prefix.ends_with('\\')
        {
            if Pattern::wildcard(prefix).is_wildcard() {
                return Pattern::wildcard(&format!("{prefix} *"));
            }
            return Pattern::Prefix(unescape(prefix));
        }
        let pattern = Pattern::wildcard(specifier);
        if pattern.is_wildcard() {
            pattern
        } else {
            Pattern::Exact(unescape(specifier))
        }
    }

    /// Split on unescaped `*`; `\*` is a literal star and `\\` a literal backslash.
    fn wildcard(specifier: &str) -> Pattern {
        let mut pieces = vec![String::new()];
        let mut chars = specifier.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some('*' | '\\')) => {
                    pieces.last_mut().unwrap().push(chars.next().unwrap());
                }
                '*' => pieces.push(String::new()),
                c => pieces.last_mut().unwrap().push(c),
            }
        }
        Pattern::Wildcard(pieces)
    }

    fn is_wildcard(&self) -> bool {
        matches!(self, Pattern::Wildcard(pieces) if pieces.len() > 1)
    }

    /// Whether the pattern starts with literal text, so that it cannot match a command
    /// through a leading wildcard.
    fn anchored(&self) -> bool {
        match self {
            Pattern::All | Pattern::Exact(_) | Pattern::Prefix(_) => true,
            Pattern::Wildcard(pieces) => !pieces[0].is_empty(),
        }
    }

    /// Whether `text`, a whole subcommand, matches. `broad`: also the older reading of
    /// `prefix:*` (any command starting with the prefix), for deny and ask rules.
    fn matches(&self, text: &str, broad: bool) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(exact) => text == exact,
            Pattern::Prefix(prefix) => {
                text == prefix
                    || text
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| broad || rest.starts_with(' '))
            }
            Pattern::Wildcard(pieces) => {
                if pieces.len() == 2
                    && pieces[1].is_empty()
                    && let Some(bare) = pieces[0].strip_suffix(' ')
                    && text == bare
                {
                    return true;
                }
                glob(pieces, text)
            }
        }
    }

    /// Whether the pattern's text appears anywhere in `text` (for unreadable commands).
    fn appears_in(&self, text: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(literal) | Pattern::Prefix(literal) => text.contains(literal.as_str()),
            Pattern::Wildcard(pieces) => {
                let mut rest = text;
                for piece in pieces {
                    let piece = piece.trim();
                    match rest.find(piece) {
                        Some(at) => rest = &rest[at + piece.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

fn unescape(text: &str) -> String {
    match Pattern::wildcard(text) {
        Pattern::Wildcard(mut pieces) if pieces.len() == 1 => pieces.pop().unwrap_or_default(),
        _ => text.to_string(),
    }
}

/// Anchored match of `*`-separated pieces: the first piece starts the text, the last ends
/// it, the others appear in order between (leftmost choice is enough with only `*`).
fn glob(pieces: &[String], text: &str) -> bool {
    let (first, rest) = pieces.split_first().expect("at least one piece");
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for piece in middle {
        match remaining.find(piece.as_str()) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last.as_str())
}

/// Programs that run their arguments as a command. Claude Code strips the first nine
/// (in precise forms, see [`strip_wrapper`]); the others are only used to read deny and ask
/// rules broadly.
const WRAPPERS: [&str; 16] = [
    "timeout",
    "time",
    "nice",
    "nohup",
    "stdbuf",
    "command",
    "builtin",
    "noglob",
    "xargs",
    "env",
    "sudo",
    "exec",
    "nocorrect",
    "setsid",
    "ionice",
    "watch",
];

/// The index of the wrapped command when `words[at]` is a wrapper Claude Code strips, in a
/// form simple enough to be sure it does: `timeout 30s cmd`, `time [-p] cmd`,
/// `nice [-n N] cmd`, `nohup cmd`, `stdbuf -oL cmd`, `command cmd`, `builtin cmd`,
/// `noglob cmd`, `xargs cmd`.
fn strip_wrapper(words: &[String], at: usize) -> Option<usize> {
    let next = |i: usize| words.get(i).map(String::as_str);
    let mut i = at + 1;
    match words[at].as_str() {
        "nohup" | "builtin" | "noglob" => {}
        "command" | "xargs" => {
            if next(i)?.starts_with('-') {
                return None;
            }
        }
        "time" => {
            if next(i) == Some("-p") {
                i += 1;
            }
        }
        "timeout" => {
            let duration = next(i)?;
            let number = duration.trim_end_matches(['s', 'm', 'h', 'd']);
            let valid = !number.is_empty()
                && number.len() + 1 >= duration.len()
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if !valid {
                return None;
            }
            i += 1;
        }
        "nice" => {
            if next(i) == Some("-n") {
                next(i + 1)?.parse::<i32>().ok()?;
                i += 2;
            }
        }
        "stdbuf" => {
            while let Some(option) = next(i) {
                let short = option.len() == 3
                    && matches!(&option[..2], "-i" | "-o" | "-e")
                    && matches!(&option[2..], "L" | "0");
                if !short {
                    break;
                }
                i += 1;
            }
            if i == at + 1 {
                return None;
            }
        }
        _ => return None,
    }
    let command = next(i)?;
    (!command.starts_with('-')).then_some(i)
}

/// One subcommand of a line.
struct Sub<'a> {
    simple: &'a Simple,
    src: &'a str,
}

impl Sub<'_> {
    /// The text from `start` to the end of the subcommand, redirections left out (each
    /// remaining piece trimmed and joined with one space).
    fn text_from(&self, start: usize) -> String {
        let mut pieces = Vec::new();
        let mut at = start;
        for redirection in &self.simple.redirections {
            if redirection.range.start >= start {
                pieces.push(&self.src[at..redirection.range.start]);
                at = redirection.range.end;
            }
        }
        pieces.push(&self.src[at.max(start)..self.simple.range.end.max(at)]);
        let pieces: Vec<&str> = pieces
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        pieces.join(" ")
    }

    fn raw(&self) -> &str {
        &self.src[self.simple.range.clone()]
    }

    /// Every reading a deny or ask rule is matched against: as written, without
    /// redirections, without assignments, every word on after a wrapper, and the same with
    /// quotes removed (and a program's directory dropped).
    fn loose(&self) -> Vec<String> {
        let simple = self.simple;
        let mut texts = vec![self.raw().to_string(), self.text_from(simple.range.start)];
        let words = &simple.words;
        let mut starts = vec![0];
        if let Some(first) = words
            .iter()
            .position(|word| WRAPPERS.contains(&base_name(word)))
        {
            starts.extend(first + 1..words.len());
        }
        for &start in &starts {
            let Some(range) = simple.word_ranges.get(start) else {
                continue;
            };
            texts.push(self.text_from(range.start));
            texts.push(words[start..].join(" "));
            if base_name(&words[start]) != words[start] {
                let mut renamed = vec![base_name(&words[start])];
                renamed.extend(words[start + 1..].iter().map(String::as_str));
                texts.push(renamed.join(" "));
            }
        }
        texts
    }

    /// The readings an allow rule may match, and whether only rules anchored at the start
    /// may match them; `None` when no allow rule can cover this subcommand: it writes or
    /// reads a file through a redirection, or its program is not known before it runs.
    fn strict(&self) -> Option<(Vec<String>, bool)> {
        let simple = self.simple;
        let file_redirection = simple
            .redirections
            .iter()
            .any(|r| r.writes_file() || r.op == "<");
        if file_redirection {
            return None;
        }
        let Some(program_at) = simple.program_at else {
            return Some((vec![self.raw().to_string()], true));
        };
        let program = &self.src[simple.word_ranges[0].clone()];
        if program.contains(['$', '`', '*', '?']) {
            return None;
        }
        let safe = simple.assignments.iter().all(|assignment| {
            let name = assignment.split(['=', '+', '[']).next().unwrap_or("");
            SAFE_ENV_VARS.contains(&name) && !assignment.contains(['$', '`'])
        });
        if !safe {
            return Some((vec![self.raw().to_string()], true));
        }
        let mut texts = vec![
            self.raw().to_string(),
            self.text_from(simple.range.start),
            self.text_from(program_at),
        ];
        let mut at = 0;
        while let Some(next) = strip_wrapper(&simple.words, at) {
            texts.push(self.text_from(simple.word_ranges[next].start));
            at = next;
        }
        Some((texts, false))
    }
}

/// A program word without its directory (`/bin/rm` → `rm`).
fn base_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(allow: &[&str], ask: &[&str], deny: &[&str]) -> Permissions {
        Permissions::from_settings(&[json!({
            "permissions": {"allow": allow, "ask": ask, "deny": deny}
        })])
    }

    fn allow(rule: &str) -> Verdict {
        Verdict::Allow(rule.into())
    }

    #[test]
    fn rule_forms() {
        let p = |r: &str| Rule::parse(r, Kind::Allow).map(|r| r.pattern);
        assert_eq!(p("Bash"), Some(Pattern::All));
        assert_eq!(p("Bash(*)"), Some(Pattern::All));
        assert_eq!(
            p("Bash(npm run build)"),
            Some(Pattern::Exact("npm run build".into()))
        );
        assert_eq!(
            p("Bash(npm run test:*)"),
            Some(Pattern::Prefix("npm run test".into()))
        );
        assert_eq!(
            p("Bash(git diff *)"),
            Some(Pattern::Wildcard(vec!["git diff ".into(), String::new()]))
        );
        assert_eq!(p(r"Bash(echo \*)"), Some(Pattern::Exact("echo *".into())));
        assert_eq!(
            p("Bash(git * main:*)"),
            Some(Pattern::Wildcard(vec![
                "git ".into(),
                " main ".into(),
                String::new()
            ]))
        );
        // Other tools, malformed rules, allow-only restrictions.
        for rule in [
            "Read(./.env)",
            "WebFetch(domain:github.com)",
            "mcp__github",
            "Bash(npm",
            "bash(ls)",
            "Bash()",
            "Bash(command:rm *)",
            "*",
            "Bashful",
        ] {
            assert_eq!(p(rule), None, "{rule}");
        }
        let r = |rule: &str| Rule::parse(rule, Kind::Restrict).map(|r| r.pattern);
        assert_eq!(r("*"), Some(Pattern::All));
        assert_eq!(r("B*"), Some(Pattern::All));
        assert_eq!(r("mcp__*"), None);
        assert_eq!(r("Bash()"), Some(Pattern::All));
        assert_eq!(
            r("Bash(command: rm *)"),
            Some(Pattern::Wildcard(vec!["rm ".into(), String::new()]))
        );
    }

    #[test]
    fn documented_wildcard_table() {
        // The table of the official permissions page, row by row.
        let rows: [(&str, &[&str], &[&str]); 8] = [
            (
                "npm run build",
                &["npm run build"],
                &["npm run build --watch"],
            ),
            (
                "npm run *",
                &["npm run build", "npm run test --watch", "npm run"],
                &["npm install"],
            ),
            (
                "git log * main",
                &["git log --oneline main", "git log -5 main"],
                &["git log main", "git push origin main"],
            ),
            (
                "git * main",
                &["git merge main", "git push origin main"],
                &["git log"],
            ),
            (
                "* --version",
                &["node --version", "bash -c 'echo hi' --version"],
                &["node -v"],
            ),
            ("ls *", &["ls -la", "ls"], &["lsof"]),
            ("ls*", &["ls -la", "lsof"], &[]),
            ("* --help *", &["npm --help x"], &["npm --help"]),
        ];
        for (rule, yes, no) in rows {
            let pattern = Pattern::parse(rule);
            for text in yes {
                assert!(pattern.matches(text, false), "{rule} should match {text}");
            }
            for text in no {
                assert!(
                    !pattern.matches(text, false),
                    "{rule} should not match {text}"
                );
            }
        }
        // `:*` is the same as a trailing ` *` for allow rules, broader for deny rules.
        let legacy = Pattern::parse("ls:*");
        assert!(legacy.matches("ls", false) && legacy.matches("ls -la", false));
        assert!(!legacy.matches("lsof", false));
        assert!(legacy.matches("lsof", true));
    }

    #[test]
    fn precedence_deny_ask_allow() {
        let p = rules(
            &["Bash(git *)", "Bash(aws s3 ls)"],
            &["Bash(git push *)"],
            &["Bash(aws *)", "Bash(git push --force*)"],
        );
        assert_eq!(p.verdict("git status"), allow("Bash(git *)"));
        assert_eq!(
            p.verdict("git push origin main"),
            Verdict::Ask("Bash(git push *)".into())
        );
        assert_eq!(
            p.verdict("git push --force origin"),
            Verdict::Deny("Bash(git push --force*)".into())
        );
        assert_eq!(p.verdict("aws s3 ls"), Verdict::Deny("Bash(aws *)".into()));
        assert_eq!(p.verdict("ls"), Verdict::NoMatch);
    }

    #[test]
    fn compound_commands() {
        let p = rules(
            &["Bash(cd *)", "Bash(npm test *)", "Bash(tail *)"],
            &[],
            &["Bash(rm *)"],
        );
        assert_eq!(
            p.verdict("cd web && npm test 2>&1 | tail -20"),
            allow("Bash(cd *), Bash(npm test *), Bash(tail *)")
        );
        assert_eq!(p.verdict("cd web && make"), Verdict::NoMatch);
        for command in [
            "npm test; rm -rf build",
            "npm test || rm x",
            "cat x | rm y",
            "npm test &\nrm y",
            "npm test $(rm -rf /)",
            "(cd x && rm y)",
            "FOO=bar rm -rf tmp/",
            "timeout 5 rm x",
            "sudo -u bob rm x",
            "/bin/rm x",
            "'rm' -rf x",
            "xargs -n1 rm < list",
        ] {
            assert_eq!(
                p.verdict(command),
                Verdict::Deny("Bash(rm *)".into()),
                "{command}"
            );
        }
        // Operators inside quotes are not operators.
        assert_eq!(
            p.verdict("npm test -- -t 'a && rm b'"),
            allow("Bash(npm test *)")
        );
    }

    #[test]
    fn wrappers_and_assignments() {
        let p = rules(&["Bash(npm test *)", "Bash(grep *)"], &[], &[]);
        for command in [
            "timeout 30 npm test",
            "time npm test",
            "nice -n 10 npm test",
            "nohup npm test",
            "stdbuf -oL npm test",
            "command npm test",
            "NODE_ENV=test npm test",
            "NODE_ENV=test timeout 5m npm test -- --ci",
        ] {
            assert_eq!(p.verdict(command), allow("Bash(npm test *)"), "{command}");
        }
        assert_eq!(
            p.verdict("git ls-files | xargs grep TODO"),
            Verdict::NoMatch
        );
        assert_eq!(
            rules(&["Bash(git ls-files)", "Bash(grep *)"], &[], &[])
                .verdict("git ls-files | xargs grep TODO"),
            allow("Bash(git ls-files), Bash(grep *)")
        );
        for command in [
            "CI=1 npm test",
            "LD_PRELOAD=x.so npm test",
            "NODE_ENV=$(id) npm test",
            "xargs -n1 grep x",
            "command -v npm test",
            "timeout -s KILL 5 npm test",
            "watch npm test",
            "devbox run npm test",
        ] {
            assert_eq!(p.verdict(command), Verdict::NoMatch, "{command}");
        }
    }

    #[test]
    fn what_an_allow_never_covers() {
        let p = rules(
            &["Bash(npm test *)", "Bash(cat *)", "Bash(echo *)"],
            &[],
            &[],
        );
        for command in [
            "npm test > out.txt",
            "npm test 2> err.log",
            "npm test &> all.log",
            "cat < secrets",
            "if true; then npm test; fi",
            "{ npm test; }",
            "f() { npm test; }; f",
            "cat <<EOF\n$(rm -rf /)\nEOF",
            "$TOOL test",
            "npm test 'unterminated",
            "",
            "# only a comment",
        ] {
            assert_eq!(p.verdict(command), Verdict::NoMatch, "{command:?}");
        }
        assert_eq!(
            p.verdict("npm test 2>&1 >/dev/null"),
            allow("Bash(npm test *)")
        );
        assert_eq!(
            p.verdict("cat <<'EOF'\n$(not run)\nEOF"),
            allow("Bash(cat *)")
        );
        // A bare `Bash` allows everything readable, compound or not, and nothing unreadable.
        let all = rules(&["Bash"], &[], &["Bash(rm *)"]);
        assert_eq!(all.verdict("for f in *; do make; done"), allow("Bash"));
        assert_eq!(all.verdict("echo 'open"), Verdict::NoMatch);
        assert_eq!(
            all.verdict("for f in *; do rm $f; done"),
            Verdict::Deny("Bash(rm *)".into())
        );
    }

    #[test]
    fn unreadable_commands() {
        let p = rules(
            &["Bash"],
            &["Bash(git push:*)"],
            &["Bash(rm -rf *)", "Bash(curl * | sh)"],
        );
        assert_eq!(
            p.verdict("echo 'x && rm -rf /"),
            Verdict::Deny("Bash(rm -rf *)".into())
        );
        assert_eq!(
            p.verdict("curl https://x.sh | sh \"oops"),
            Verdict::Deny("Bash(curl * | sh)".into())
        );
        assert_eq!(
            p.verdict("git push origin `x"),
            Verdict::Ask("Bash(git push:*)".into())
        );
        assert_eq!(p.verdict("echo \"unbalanced"), Verdict::NoMatch);
        assert_eq!(
            rules(&[], &[], &["Bash"]).verdict("(("),
            Verdict::Deny("Bash".into())
        );
    }

    #[test]
    fn project_allows_need_a_trusted_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("work/app");
        std::fs::create_dir_all(&project).unwrap();
        let config = dir.path().join(".claude.json");
        assert!(!workspace_trusted(&project, Some(&config)));
        let trust = |path: &Path, yes: bool| {
            let key = path.to_str().unwrap();
            std::fs::write(
                &config,
                json!({"projects": {key: {"hasTrustDialogAccepted": yes}}}).to_string(),
            )
            .unwrap();
        };
        trust(&project, false);
        assert!(!workspace_trusted(&project, Some(&config)));
        trust(&project, true);
        assert!(workspace_trusted(&project, Some(&config)));
        // A trusted parent covers its subdirectories, not the other way round.
        trust(&dir.path().join("work"), true);
        assert!(workspace_trusted(&project, Some(&config)));
        assert!(!workspace_trusted(dir.path(), Some(&config)));
        std::fs::write(&config, "not json").unwrap();
        assert!(!workspace_trusted(&project, Some(&config)));

        let mut settings = vec![
            (
                Scope::Project,
                json!({"permissions": {"allow": ["Bash"], "deny": ["Bash(rm:*)"]}}),
            ),
            (
                Scope::Local,
                json!({"permissions": {"allow": ["Bash(pytest:*)"]}}),
            ),
        ];
        drop_project_allows(&mut settings);
        let p = Permissions::from_scoped(&settings);
        assert_eq!(p.verdict("ls"), Verdict::NoMatch);
        assert_eq!(p.verdict("pytest -x"), allow("Bash(pytest:*)"));
        assert!(matches!(p.verdict("rm x"), Verdict::Deny(_)));
    }

    #[test]
    fn scopes_and_managed_only_rules() {
        let user =
            json!({"permissions": {"allow": ["Bash(npm test)"], "deny": ["Bash(git push *)"]}});
        let project =
            json!({"permissions": {"allow": ["Bash(git push *)"], "ask": ["Bash(make)"]}});
        let managed = json!({"allowManagedPermissionRulesOnly": true,
                             "permissions": {"allow": ["Bash(cargo test *)"]}});
        let scoped = [
            (Scope::User, user.clone()),
            (Scope::Project, project.clone()),
            (Scope::Managed, managed.clone()),
        ];
        let p = Permissions::from_scoped(&scoped);
        assert_eq!(p.verdict("npm test"), Verdict::NoMatch);
        assert_eq!(p.verdict("cargo test --lib"), allow("Bash(cargo test *)"));
        assert_eq!(
            p.verdict("git push"),
            Verdict::Deny("Bash(git push *)".into())
        );
        assert_eq!(p.verdict("make"), Verdict::Ask("Bash(make)".into()));
        // The switch counts only in managed settings.
        let p = Permissions::from_scoped(&[(Scope::User, user), (Scope::Project, managed)]);
        assert_eq!(p.verdict("npm test"), allow("Bash(npm test)"));
        // Without scopes, everything merges.
        let p = Permissions::from_settings(&[project]);
        assert_eq!(p.verdict("git push origin"), allow("Bash(git push *)"));
    }

    #[test]
    fn reading_files_reports_problems() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let managed = dir.path().join("managed");
        std::fs::create_dir_all(project.join(".claude")).unwrap();
        std::fs::create_dir_all(managed.join("managed-settings.d")).unwrap();
        std::fs::write(
            project.join(".claude/settings.json"),
            r#"{"permissions": {"allow": ["Bash(make)"]}}"#,
        )
        .unwrap();
        std::fs::write(project.join(".claude/settings.local.json"), "{ not json").unwrap();
        std::fs::write(
            managed.join("managed-settings.d/20-deny.json"),
            r#"{"permissions": {"deny": ["Bash(make)"]}}"#,
        )
        .unwrap();
        std::fs::write(managed.join("managed-settings.d/.hidden.json"), "[]").unwrap();
        std::fs::write(managed.join("managed-settings.d/10-list.json"), "[1]").unwrap();
        let files = settings_files(&project, &managed);
        let scopes: Vec<Scope> = files
            .iter()
            .map(|(s, _)| *s)
            .skip_while(|s| *s == Scope::User)
            .collect();
        assert_eq!(
            scopes,
            [
                Scope::Project,
                Scope::Local,
                Scope::Managed,
                Scope::Managed,
                Scope::Managed
            ]
        );
        let files: Vec<_> = files
            .into_iter()
            .filter(|(s, _)| *s != Scope::User)
            .collect();
        let (settings, problems) = read_settings(&files);
        assert_eq!(settings.len(), 2);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("settings.local.json is not valid JSON"));
        assert!(problems[1].contains("10-list.json is not a JSON object"));
        let p = Permissions::from_scoped(&settings);
        assert_eq!(p.verdict("make"), Verdict::Deny("Bash(make)".into()));
    }
}
