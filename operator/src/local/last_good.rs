//! Each manifest file's last good text. A file that cannot be read, is not UTF-8, is not YAML,
//! or is empty while it held objects (an editor, `cat >` or `rsync --inplace` rewriting it)
//! keeps the objects of its last good text, and the file is named in a problem line. A file
//! that is deleted is gone, and its objects with it.

use std::collections::BTreeMap;

use super::files::ReadFile;
use crate::manifests::readable_text;

/// The last good text of every manifest file seen.
#[derive(Debug, Default)]
pub(super) struct LastGood {
    texts: BTreeMap<String, String>,
}

/// What one directory read gives to load.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Sources {
    /// (file name, text) in name order: the current text, or the last good one.
    pub texts: Vec<(String, String)>,
    /// One line per file that could not be used as it is now.
    pub problems: Vec<String>,
}

impl LastGood {
    /// Takes one read of the directory: remembers the good texts, stands the last good text
    /// in for each file that failed, and forgets files that are gone.
    pub(super) fn update(&mut self, read: Vec<ReadFile>) -> Sources {
        let mut sources = Sources::default();
        let mut texts = BTreeMap::new();
        for (name, bytes) in read {
            let current = match &bytes {
                Err(e) => Err(format!("{name}: cannot be read: {e}")),
                Ok(bytes) => match readable_text(&name, bytes) {
                    Ok((_, 0)) if self.held_objects(&name) => {
                        Err(format!("{name}: holds no objects now (being rewritten?)"))
                    }
                    Ok((text, _)) => Ok(text.to_string()),
                    Err(problem) => Err(problem),
                },
            };
            let text = match current {
                Ok(text) => text,
                Err(problem) => match self.texts.remove(&name) {
                    Some(last) => {
                        sources.problems.push(format!(
                            "{problem}; its last good objects are kept until it is fixed or deleted"
                        ));
                        last
                    }
                    None => {
                        sources.problems.push(problem);
                        continue;
                    }
                },
            };
            sources.texts.push((name.clone(), text.clone()));
            texts.insert(name, text);
        }
        self.texts = texts;
        sources
    }

    fn held_objects(&self, name: &str) -> bool {
        self.texts
            .get(name)
            .is_some_and(|t| readable_text(name, t.as_bytes()).is_ok_and(|(_, n)| n > 0))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    const OBJECT: &str = "kind: AddressPool\n";

    fn ok(name: &str, text: &str) -> ReadFile {
        (name.into(), Ok(text.as_bytes().to_vec()))
    }

    #[test]
    fn a_file_that_fails_keeps_its_last_good_text_and_is_named() {
        let mut last = LastGood::default();
        let first = last.update(vec![ok("a.yaml", OBJECT), ok("b.yaml", OBJECT)]);
        assert!(first.problems.is_empty());
        assert_eq!(first.texts.len(), 2);

        for (bad, expect) in [
            (
                ok("a.yaml", "kind: [unbalanced\n"),
                "a.yaml: not valid YAML",
            ),
            (
                ("a.yaml".into(), Ok(b"kind: \xff\n".to_vec())),
                "a.yaml: not UTF-8 text",
            ),
            (ok("a.yaml", ""), "a.yaml: holds no objects now"),
            (
                ("a.yaml".into(), Err(io::Error::other("permission denied"))),
                "a.yaml: cannot be read: permission denied",
            ),
        ] {
            let s = last.update(vec![bad, ok("b.yaml", OBJECT)]);
            assert_eq!(
                s.texts,
                vec![
                    ("a.yaml".into(), OBJECT.into()),
                    ("b.yaml".into(), OBJECT.into())
                ],
                "{expect}"
            );
            assert_eq!(s.problems.len(), 1);
            assert!(s.problems[0].starts_with(expect), "{:?}", s.problems);
            assert!(
                s.problems[0]
                    .ends_with("its last good objects are kept until it is fixed or deleted")
            );
        }
    }

    #[test]
    fn deleted_files_go_and_new_bad_files_are_only_reported() {
        let mut last = LastGood::default();
        last.update(vec![ok("a.yaml", OBJECT)]);
        let s = last.update(vec![ok("new.yaml", "kind: [\n")]);
        assert!(s.texts.is_empty(), "a.yaml was deleted");
        assert_eq!(s.problems.len(), 1);
        assert!(s.problems[0].starts_with("new.yaml: not valid YAML"));
        assert!(!s.problems[0].contains("kept"));
        // An empty file that never held objects is just empty.
        let s = last.update(vec![ok("empty.yaml", "# nothing yet\n")]);
        assert_eq!(s.problems, Vec::<String>::new());
    }
}
