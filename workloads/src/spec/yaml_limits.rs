//! Bounds a YAML file must meet before a parser sees it: a size cap, checked while reading,
//! and a nesting-depth cap, checked by a linear pre-scan (the YAML parser slows down
//! quadratically with nesting, so a 2 MB file of `[[[[…` would never finish parsing).
//! Shared by workload files and the harness's campaign config.
//!
//! The pre-scan follows libyaml's tokenizer where it decides nesting: quoted, plain and
//! block scalars, comments, anchors and tags (a `[` inside any of them opens nothing), and
//! the block indentation levels opened by `- `, `? ` and `key:`. Its count is never lower
//! than the parser's for YAML the parser accepts.

use std::io::Read;
use std::path::Path;

/// Most nesting levels a powercut YAML file may have: open flow `[`/`{` brackets plus open
/// block collections (real files need four or five).
pub const MAX_YAML_DEPTH: usize = 32;

/// Why a YAML file was refused before parsing. The caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum YamlLimitError {
    /// Opening or reading the file failed.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    /// The file is bigger than the cap.
    #[error("is larger than the limit of {max_bytes} bytes; is this the right file?")]
    TooLarge {
        /// The cap, in bytes.
        max_bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error("is not UTF-8 text")]
    NotUtf8,
    /// Nesting goes deeper than the cap.
    #[error(
        "line {line}: YAML nested deeper than {max_depth} levels (open `[`/`{{` brackets plus \
         indentation levels); powercut files need only a few"
    )]
    TooDeep {
        /// 1-based line where the cap was passed.
        line: usize,
        /// The cap.
        max_depth: usize,
    },
}

/// Read `path` as UTF-8 text of at most `max_bytes` bytes ([`read_capped`]), then check its
/// nesting against [`MAX_YAML_DEPTH`] ([`check_depth`]).
pub fn read_yaml(path: &Path, max_bytes: u64) -> Result<String, YamlLimitError> {
    let text = read_capped(path, max_bytes)?;
    check_depth(&text, MAX_YAML_DEPTH)?;
    Ok(text)
}

/// Read `path` as UTF-8 text of at most `max_bytes` bytes: a regular file's size is checked
/// from its metadata before reading, and the read itself stops after `max_bytes + 1` bytes
/// (the file may grow meanwhile, or be a pipe).
pub fn read_capped(path: &Path, max_bytes: u64) -> Result<String, YamlLimitError> {
    let file = std::fs::File::open(path).map_err(YamlLimitError::Io)?;
    let meta = file.metadata().map_err(YamlLimitError::Io)?;
    if meta.is_file() && meta.len() > max_bytes {
        return Err(YamlLimitError::TooLarge { max_bytes });
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(YamlLimitError::Io)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > max_bytes) {
        return Err(YamlLimitError::TooLarge { max_bytes });
    }
    String::from_utf8(bytes).map_err(|_| YamlLimitError::NotUtf8)
}

/// Check that `text` nests at most `max_depth` levels (open flow brackets plus open block
/// collections) in one linear pass. The error names the 1-based line where the cap was
/// passed.
pub fn check_depth(text: &str, max_depth: usize) -> Result<(), YamlLimitError> {
    let mut scan = Scan::new(max_depth);
    let mut line: Vec<char> = Vec::new();
    let mut number = 1;
    let mut chars = text.chars().peekable();
    loop {
        line.clear();
        let mut line_break = None;
        for c in chars.by_ref() {
            if is_break(c) {
                line_break = Some(c);
                break;
            }
            line.push(c);
        }
        scan.line(&line)
            .map_err(|TooDeep| YamlLimitError::TooDeep {
                line: number,
                max_depth,
            })?;
        match line_break {
            None => return Ok(()),
            // "\r\n" is one line break.
            Some('\r') if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            Some(_) => {}
        }
        number += 1;
    }
}

/// Line breaks as YAML (libyaml) knows them: LF, CR, NEL, LS, PS.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Is `line[i]` a blank or past the end of the line?
fn blank_or_end(line: &[char], i: usize) -> bool {
    line.get(i).is_none_or(|&c| is_blank(c))
}

/// The nesting cap was passed.
struct TooDeep;

/// Kind of a block collection open at some column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A mapping (`key:` or `? key`).
    Map,
    /// A sequence (`- ` entries); it may sit at the column of its parent mapping's keys.
    Seq,
}

/// An open flow collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowLevel {
    /// `[` (else `{`).
    sequence: bool,
    /// A `[` whose current entry is a `key: value` pair.
    pair: bool,
}

/// What the scanner is inside of at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between tokens.
    Token,
    /// A plain (unquoted) scalar, which may continue on more-indented lines.
    Plain,
    /// A single-quoted scalar.
    Single,
    /// A double-quoted scalar.
    Double,
    /// A block scalar (`|` or `>`): the more-indented lines that follow are its text.
    BlockScalar,
}

/// Scanner state carried from line to line.
#[derive(Debug)]
struct Scan {
    /// Open block collections: (column, kind); columns never decrease.
    blocks: Vec<(usize, Block)>,
    /// Open flow brackets, innermost last: whether it is a `[` holding a `key: value` pair
    /// (a mapping the parser makes without brackets).
    flow: Vec<FlowLevel>,
    mode: Mode,
    /// Indentation of the enclosing block collection when the block scalar started (None:
    /// at the top level, where every line belongs to it).
    scalar_parent: Option<usize>,
    /// Column of the token that would be a `key:` on this line (libyaml's simple key).
    key_col: Option<usize>,
    /// Whether the next token may start a key (after an indentation, `- `, `? `, `: `).
    key_allowed: bool,
    max_depth: usize,
}

impl Scan {
    fn new(max_depth: usize) -> Scan {
        Scan {
            blocks: Vec::new(),
            flow: Vec::new(),
            mode: Mode::Token,
            scalar_parent: None,
            key_col: None,
            key_allowed: true,
            max_depth,
        }
    }

    /// The indentation of the innermost block collection (the parser's "indent").
    fn indent(&self) -> Option<usize> {
        self.blocks.last().map(|&(c, _)| c)
    }

    fn check(&self) -> Result<(), TooDeep> {
        let pairs = self.flow.iter().filter(|f| f.pair).count();
        if self.blocks.len() + self.flow.len() + pairs > self.max_depth {
            Err(TooDeep)
        } else {
            Ok(())
        }
    }

    /// A block collection of `kind` has an entry at `col`: open it unless it is open.
    fn open_block(&mut self, col: usize, kind: Block) -> Result<(), TooDeep> {
        match self.blocks.last() {
            Some(&(c, k)) if c == col && k == kind => return Ok(()),
            Some(&(c, Block::Seq)) if c == col => {
                // A key at the column of a sequence nested in a mapping: the sequence ended.
                self.blocks.pop();
                return self.open_block(col, kind);
            }
            Some(&(c, _)) if c > col => return Ok(()),
            _ => self.blocks.push((col, kind)),
        }
        self.check()
    }

    /// A `?` or `:` in flow context: inside `[…]` it makes the entry a one-pair mapping.
    fn flow_pair(&mut self) -> Result<(), TooDeep> {
        match self.flow.last_mut() {
            Some(level) if level.sequence && !level.pair => {
                level.pair = true;
                self.check()
            }
            _ => Ok(()),
        }
    }

    /// A token starts at `col`: it is the line's key candidate if keys are allowed here.
    fn token_at(&mut self, col: usize) {
        if self.flow.is_empty() && self.key_allowed {
            self.key_col = Some(col);
        }
        self.key_allowed = false;
    }

    fn line(&mut self, line: &[char]) -> Result<(), TooDeep> {
        // A byte-order mark at the start of a line is skipped like a space.
        let first = line
            .iter()
            .enumerate()
            .position(|(i, &c)| !(is_blank(c) || (i == 0 && c == '\u{feff}')));
        let Some(col) = first else {
            return Ok(());
        };
        let starts_with = |s: &str| {
            s.chars().zip(line).all(|(a, &b)| a == b) && line.len() >= 3 && blank_or_end(line, 3)
        };
        let doc_marker = col == 0 && (starts_with("---") || starts_with("..."));
        // Any new line makes a pending key candidate stale.
        self.key_col = None;
        match self.mode {
            Mode::Single | Mode::Double => return self.scan(line, 0),
            Mode::BlockScalar => {
                if !doc_marker && self.scalar_parent.is_none_or(|p| col > p) {
                    return Ok(());
                }
                self.mode = Mode::Token;
            }
            Mode::Plain => {
                let continues = !doc_marker
                    && line[col] != '#'
                    && (!self.flow.is_empty() || self.indent().is_none_or(|p| col > p));
                if continues {
                    return self.scan(line, col);
                }
                self.mode = Mode::Token;
            }
            Mode::Token => {}
        }
        if line[col] == '#' {
            return Ok(());
        }
        if doc_marker {
            self.blocks.clear();
            self.key_allowed = true;
            return if line[0] == '.' {
                Ok(())
            } else {
                self.scan(line, 3)
            };
        }
        if col == 0 && line[0] == '%' {
            // A directive (`%YAML 1.2`).
            return Ok(());
        }
        if self.flow.is_empty() {
            while self.blocks.last().is_some_and(|&(c, _)| c > col) {
                self.blocks.pop();
            }
            let entry = line[col] == '-' && blank_or_end(line, col + 1);
            if !entry && self.blocks.last() == Some(&(col, Block::Seq)) {
                self.blocks.pop();
            }
            self.key_allowed = true;
        }
        self.scan(line, col)
    }

    /// Scan `line` from index `i` in the current mode.
    fn scan(&mut self, line: &[char], mut i: usize) -> Result<(), TooDeep> {
        while let Some(&c) = line.get(i) {
            match self.mode {
                Mode::BlockScalar => return Ok(()),
                Mode::Single => {
                    if c == '\'' {
                        if line.get(i + 1) == Some(&'\'') {
                            i += 1;
                        } else {
                            self.mode = Mode::Token;
                        }
                    }
                    i += 1;
                    continue;
                }
                Mode::Double => {
                    if c == '\\' {
                        i += 1;
                    } else if c == '"' {
                        self.mode = Mode::Token;
                    }
                    i += 1;
                    continue;
                }
                Mode::Plain => {
                    if is_blank(c) {
                        while line.get(i).is_some_and(|&b| is_blank(b)) {
                            i += 1;
                        }
                        if line.get(i) == Some(&'#') {
                            self.mode = Mode::Token;
                            return Ok(());
                        }
                        continue;
                    }
                    let ends = (c == ':' && blank_or_end(line, i + 1))
                        || (!self.flow.is_empty() && ",[]{}".contains(c));
                    if !ends {
                        i += 1;
                        continue;
                    }
                    self.mode = Mode::Token;
                }
                Mode::Token => {}
            }
            i = self.token(line, i)?;
        }
        Ok(())
    }

    /// Handle the token starting at `line[i]` (mode `Token`); returns where to go on.
    fn token(&mut self, line: &[char], i: usize) -> Result<usize, TooDeep> {
        let c = line[i];
        let in_flow = !self.flow.is_empty();
        match c {
            ' ' | '\t' => {}
            '#' => return Ok(line.len()),
            '[' | '{' => {
                self.token_at(i);
                self.flow.push(FlowLevel {
                    sequence: c == '[',
                    pair: false,
                });
                self.check()?;
                self.key_allowed = true;
            }
            ']' | '}' => {
                self.flow.pop();
                self.key_allowed = false;
            }
            ',' => {
                if let Some(level) = self.flow.last_mut() {
                    level.pair = false;
                }
                self.key_allowed = true;
            }
            '-' if blank_or_end(line, i + 1) => {
                if !in_flow {
                    self.open_block(i, Block::Seq)?;
                }
                self.key_allowed = true;
                self.key_col = None;
            }
            '?' if in_flow || blank_or_end(line, i + 1) => {
                if in_flow {
                    self.flow_pair()?;
                } else {
                    self.open_block(i, Block::Map)?;
                }
                self.key_allowed = true;
                self.key_col = None;
            }
            ':' if in_flow || blank_or_end(line, i + 1) => {
                if in_flow {
                    self.flow_pair()?;
                } else {
                    let key = self.key_col.unwrap_or(i);
                    self.open_block(key, Block::Map)?;
                }
                self.key_allowed = !in_flow;
                self.key_col = None;
            }
            '&' | '*' => {
                // An anchor or alias: letters, digits, `-` and `_`.
                self.token_at(i);
                let len = line[i + 1..]
                    .iter()
                    .take_while(|&&b| b.is_ascii_alphanumeric() || b == '-' || b == '_')
                    .count();
                return Ok(i + 1 + len);
            }
            '!' => {
                // A tag runs to the next blank (in flow context, also to `,[]{}`).
                self.token_at(i);
                let len = line[i + 1..]
                    .iter()
                    .take_while(|&&b| !(is_blank(b) || (in_flow && ",[]{}".contains(b))))
                    .count();
                return Ok(i + 1 + len);
            }
            '|' | '>' if !in_flow => {
                self.token_at(i);
                self.mode = Mode::BlockScalar;
                self.scalar_parent = self.indent();
                return Ok(line.len());
            }
            '\'' => {
                self.token_at(i);
                self.mode = Mode::Single;
            }
            '"' => {
                self.token_at(i);
                self.mode = Mode::Double;
            }
            _ => {
                self.token_at(i);
                self.mode = Mode::Plain;
            }
        }
        Ok(i + 1)
    }
}

#[cfg(test)]
mod tests;
