//! Collapse progress output to its final state.
//!
//! 1. Carriage-return redraws: within a line, everything before the last `\r` (one that is
//!    not part of a `\r\n` ending) was overdrawn on the terminal; only the final non-empty
//!    segment is kept. This is what a person saw, so no marker is written.
//! 2. Successive states of one progress bar printed on separate lines (pip's `━━━━ 1.2/3.4
//!    MB`, tqdm's `45%|████▌ | 45/100`, `Downloading x 10%`, `[=====>   ] 40%`) collapse to
//!    the last state, after one marker `[kompress: N progress updates omitted]`.
//!
//! Two lines are states of the same bar when both show progress (a percentage or a run of
//! bar characters) and their words are equal once every measure (numbers, sizes, rates,
//! times, percentages) and every bar drawing is set aside. So `file1.txt 100%` and
//! `file2.txt 100%` are two bars, and both stay.

use std::borrow::Cow;

use super::lines::{self, Line, Out};

pub fn apply(text: &str) -> Cow<'_, str> {
    let redrawn = collapse_redraws(text);
    match collapse_bars(&redrawn) {
        Some(out) => Cow::Owned(out),
        None => redrawn,
    }
}

/// Step 1: keep the final segment of every `\r`-redrawn line.
fn collapse_redraws(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if !lines.iter().any(|l| l.body.contains('\r')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in &lines {
        out.push_str(final_segment(line.body));
        out.push_str(line.eol);
    }
    Cow::Owned(out)
}

/// The last non-empty `\r`-separated segment of `body` (empty when all are).
fn final_segment(body: &str) -> &str {
    body.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("")
}

/// Characters progress bars are drawn with: the Unicode drawing characters plus the ASCII
/// ones bars and their brackets, rates and counters use.
fn is_bar_char(c: char) -> bool {
    is_drawing_char(c) || "─#=>-*.|[]()<,:/%+~".contains(c)
}

/// Characters that draw a Unicode bar (a run of three shows progress).
fn is_drawing_char(c: char) -> bool {
    "━╸╺█▉▊▋▌▍▎▏░▒▓■□⣿".contains(c)
}

/// Letter runs that may appear in a measure: units, rates and `eta`.
const UNITS: &[&str] = &[
    "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "k", "m", "g", "it", "s", "ms", "h",
    "eta", "bytes",
];

/// True when `word` is a measure (`45%`, `1.2/3.4`, `5.1MB/s`, `[00:01<00:02,`), a bar
/// drawing, or a mix of both: nothing but digits, bar characters and unit letters.
fn is_measure(word: &str) -> bool {
    let mut run = String::new();
    for c in word.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphabetic() {
            if run.len() > 8 {
                return false;
            }
            run.push(c.to_ascii_lowercase());
            continue;
        }
        if !run.is_empty() {
            if !UNITS.contains(&run.as_str()) {
                return false;
            }
            run.clear();
        }
        if !(c == ' ' || c.is_ascii_digit() || is_bar_char(c) || is_drawing_char(c)) {
            return false;
        }
    }
    true
}

/// True when `body` shows progress: a percentage (`45%`), a run of at least 3 Unicode
/// bar characters (`━━━`, `███`), or a bracketed ASCII bar (`[=====>    ]`, `[###   ]`).
fn shows_progress(body: &str) -> bool {
    let bytes = body.as_bytes();
    if bytes
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'%')
    {
        return true;
    }
    let mut run = 0;
    for c in body.chars() {
        run = if is_drawing_char(c) { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    // `[` + at least 3 of `=#>-. *` with one `=` or `#` + `]`.
    let mut i = 0;
    while let Some(open) = bytes[i..].iter().position(|&b| b == b'[') {
        let start = i + open + 1;
        let len = bytes[start..]
            .iter()
            .take_while(|&&b| matches!(b, b'=' | b'#' | b'>' | b'-' | b'.' | b' ' | b'*'))
            .count();
        let bar = &bytes[start..start + len];
        if len >= 3
            && bytes.get(start + len) == Some(&b']')
            && bar.iter().any(|&b| b == b'=' || b == b'#')
        {
            return true;
        }
        i = start + len;
    }
    false
}

/// The words of a progress line that are neither measures nor bar drawings: equal keys
/// mean the same bar. `None` when the line shows no progress. Indentation is not part of
/// the key: tqdm right-aligns its percentage.
fn bar_key<'a>(line: &Line<'a>) -> Option<Vec<&'a str>> {
    if line.body.len() > 1000 || !shows_progress(line.body) {
        return None;
    }
    Some(
        line.body
            .split_whitespace()
            .filter(|w| !is_measure(w))
            .collect(),
    )
}

/// Step 2: collapse consecutive states of one bar to the last; `None` when none fold.
fn collapse_bars(text: &str) -> Option<String> {
    let lines = lines::split(text);
    let keys: Vec<_> = lines.iter().map(bar_key).collect();
    let mut out: Option<Out> = None;
    let mut i = 0;
    while i < lines.len() {
        let mut j = i + 1;
        if keys[i].is_some() {
            while j < lines.len() && keys[j] == keys[i] {
                j += 1;
            }
        }
        let run = &lines[i..j];
        let dropped = run.len() - 1;
        let msg = format!("{dropped} progress updates omitted");
        let eol = lines::eol_of(run);
        let saved = run[..dropped].iter().map(Line::len).sum::<usize>();
        if dropped >= 1 && saved > super::marker(&msg).len() + eol.len() {
            let out = out.get_or_insert_with(|| {
                let mut out = Out::new(text);
                lines[..i].iter().for_each(|l| out.line(l));
                out
            });
            out.marker(run[dropped].indent(), &msg, eol);
            out.line(&run[dropped]);
        } else if let Some(out) = out.as_mut() {
            run.iter().for_each(|l| out.line(l));
        }
        i = j;
    }
    out.map(Out::finish)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_return_redraws_keep_the_final_state() {
        let text = "Downloading 10%\rDownloading 50%\rDownloading 100%\nDone\n";
        assert_eq!(apply(text), "Downloading 100%\nDone\n");
        // CRLF endings are endings, not redraws.
        assert!(matches!(apply("a\r\nb\r\n"), Cow::Borrowed(_)));
        // A trailing lone \r (cursor back to column 0) keeps the drawn text.
        assert_eq!(apply("50% done\r"), "50% done");
        assert_eq!(apply("x\r\r\n"), "x\r\n");
        assert_eq!(apply("\r"), "");
        assert_eq!(apply("é 1%\rü 100%\r\n"), "ü 100%\r\n");
    }

    #[test]
    fn pip_rich_bars_collapse() {
        let text = "Collecting numpy\n  Downloading numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl (16.3 MB)\n     ━━━━━━━━━━╺━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4.1/16.3 MB 20.1 MB/s eta 0:00:01\n     ━━━━━━━━━━━━━━━━━━━━━━━━╸━━━━━━━━━━━━━━━ 10.2/16.3 MB 22.4 MB/s eta 0:00:01\n     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 16.3/16.3 MB 25.0 MB/s eta 0:00:00\nInstalling collected packages: numpy\n";
        let out = apply(text);
        assert_eq!(
            out,
            "Collecting numpy\n  Downloading numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl (16.3 MB)\n     [kompress: 2 progress updates omitted]\n     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 16.3/16.3 MB 25.0 MB/s eta 0:00:00\nInstalling collected packages: numpy\n"
        );
    }

    #[test]
    fn percent_and_bracket_bars_collapse() {
        let text = "Downloading model.bin 10%\nDownloading model.bin 20%\nDownloading model.bin 30%\nDownloading model.bin 40%\nDownloading model.bin 100%\n";
        assert_eq!(
            apply(text),
            "[kompress: 4 progress updates omitted]\nDownloading model.bin 100%\n"
        );
        let text = "[=>        ] 10%\n[===>      ] 30%\n[=====>    ] 50%\n[==========] 100%";
        assert_eq!(
            apply(text),
            "[kompress: 3 progress updates omitted]\n[==========] 100%"
        );
        let tqdm = " 10%|█         | 10/100 [00:01<00:09, 9.50it/s]\n 50%|█████     | 50/100 [00:05<00:05, 9.80it/s]\n100%|██████████| 100/100 [00:10<00:00, 9.90it/s]\n";
        assert_eq!(
            apply(tqdm),
            "[kompress: 2 progress updates omitted]\n100%|██████████| 100/100 [00:10<00:00, 9.90it/s]\n"
        );
    }

    #[test]
    fn different_bars_and_plain_lines_stay() {
        let text = "file1.txt 100% 1KB 1.0KB/s 00:00\nfile2.txt 100% 2KB 2.0KB/s 00:00\nfile3.txt 100% 3KB 3.0KB/s 00:00\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        let text = "Ran 3 tests\nRan 4 tests\nRan 5 tests\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        // Separator lines are not bars.
        let text = "======================================================================\n======================================================================\n#### 10 ####\n#### 20 ####\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        let docker = "a1b2: Downloading [=====>      ]  10.2MB/50MB\na1b2: Downloading [=========>  ]  30.2MB/50MB\na1b2: Downloading [===========>]  50.0MB/50MB\nc3d4: Pull complete\n";
        assert_eq!(
            apply(docker),
            "[kompress: 2 progress updates omitted]\na1b2: Downloading [===========>]  50.0MB/50MB\nc3d4: Pull complete\n"
        );
        // Two short states: the marker would not save bytes.
        assert!(matches!(apply("a 1%\na 2%\n"), Cow::Borrowed(_)));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
    }
}
