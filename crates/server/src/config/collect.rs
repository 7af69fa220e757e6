//! Deserialising the merged table with every problem listed, not only the first.
//!
//! serde stops at the first bad value. So each failing value is recorded with its path,
//! stood in for by the default at the same place (the first entry of a default array stands
//! for any entry), and the whole is deserialised again, until it succeeds. The values stood
//! in for are remembered: a rule across keys that reads one of them is not run, since its
//! verdict would be about the stand-in.

use std::fmt;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

/// Beyond this many problems the rest are not looked for.
const MAX_PROBLEMS: usize = 100;

/// Where a value sits: `countries[1].code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Path {
    /// A top-level key.
    pub fn key(key: &str) -> Path {
        Path(vec![Segment::Key(key.to_owned())])
    }

    pub fn index(mut self, index: usize) -> Path {
        self.0.push(Segment::Index(index));
        self
    }

    pub fn field(mut self, key: &str) -> Path {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    /// The top-level key the value belongs to.
    pub fn top(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Path {
        let mut segments = Vec::new();
        for segment in path {
            match segment {
                serde_path_to_error::Segment::Map { key } => {
                    segments.push(Segment::Key(key.clone()))
                }
                serde_path_to_error::Segment::Seq { index } => {
                    segments.push(Segment::Index(*index))
                }
                // Enum variants and unknown places: the path so far is as precise as it gets.
                _ => break,
            }
        }
        Path(segments)
    }

    /// One path lies within the other (or they are the same).
    fn overlaps(&self, other: &Path) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }

    fn get<'a>(&self, mut value: &'a Value) -> Option<&'a Value> {
        for segment in &self.0 {
            value = match (segment, value) {
                (Segment::Key(key), Value::Table(table)) => table.get(key)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(value)
    }

    fn get_mut<'a>(&self, mut value: &'a mut Value) -> Option<&'a mut Value> {
        for segment in &self.0 {
            value = match (segment, value) {
                (Segment::Key(key), Value::Table(table)) => table.get_mut(key)?,
                (Segment::Index(i), Value::Array(items)) => items.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// The same place in the defaults: every index becomes the first entry.
    fn in_defaults(&self) -> Path {
        Path(
            self.0
                .iter()
                .map(|s| match s {
                    Segment::Index(_) => Segment::Index(0),
                    key => key.clone(),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One problem with the value at `path`.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub path: Path,
    pub why: String,
}

impl Problem {
    pub fn new(path: Path, why: impl Into<String>) -> Problem {
        Problem {
            path,
            why: why.into(),
        }
    }
}

/// The values that could not be read as given (a stand-in took their place).
#[derive(Debug, Default)]
pub(super) struct Soundness {
    replaced: Vec<Path>,
}

impl Soundness {
    pub fn replaced(&mut self, path: Path) {
        self.replaced.push(path);
    }

    /// Every value read at `path` (and below it) is the one given.
    pub fn holds(&self, path: &Path) -> bool {
        !self.replaced.iter().any(|r| r.overlaps(path))
    }

    pub fn all(&self, paths: &[Path]) -> bool {
        paths.iter().all(|p| self.holds(p))
    }
}

/// Deserialises `table`, listing every problem; `None` when a problem could not be stood in
/// for (or there were too many to go on).
pub(super) fn deserialize<T: DeserializeOwned>(
    table: Table,
    defaults: &Table,
    soundness: &mut Soundness,
) -> (Option<T>, Vec<Problem>) {
    let mut table = Value::Table(table);
    let defaults = Value::Table(defaults.clone());
    let mut problems: Vec<Problem> = Vec::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(table.clone()) {
            Ok(value) => return (Some(value), problems),
            Err(error) => error,
        };
        let path = Path::from_serde(error.path());
        let again = problems.iter().any(|p| p.path == path);
        if !again {
            problems.push(Problem::new(path.clone(), error.inner().message()));
        }
        let stood_in = if again {
            whole_key(&mut table, &defaults, &path)
        } else {
            stand_in(&mut table, &defaults, &path)
        };
        match stood_in {
            Some(replaced) if problems.len() < MAX_PROBLEMS => soundness.replaced(replaced),
            Some(_) => {
                let path = Path(Vec::new());
                problems.push(Problem::new(
                    path,
                    "too many problems, the rest are not listed",
                ));
                return (None, problems);
            }
            None => return (None, problems),
        }
    }
}

/// Puts the default at `path` (or, for a key the defaults do not have, removes it); returns
/// what was replaced.
fn stand_in(table: &mut Value, defaults: &Value, path: &Path) -> Option<Path> {
    if let Some(default) = path.in_defaults().get(defaults)
        && let Some(slot) = path.get_mut(table)
    {
        *slot = default.clone();
        return Some(path.clone());
    }
    if let Some((Segment::Key(key), parent)) = path.0.split_last()
        && let Some(Value::Table(parent)) = Path(parent.to_vec()).get_mut(table)
        && parent.remove(key).is_some()
    {
        return Some(path.clone());
    }
    whole_key(table, defaults, path)
}

/// Puts the default of the whole top-level key, unless it is there already.
fn whole_key(table: &mut Value, defaults: &Value, path: &Path) -> Option<Path> {
    let top = Path::key(path.top()?);
    let default = top.get(defaults)?;
    let slot = top.get_mut(table)?;
    if slot == default {
        return None;
    }
    *slot = default.clone();
    Some(top)
}
