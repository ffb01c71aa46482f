//! A user's Cognito attributes ([`Attributes`]) and the name table they share ([`NameTable`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A user's Cognito attributes: name → value, in name order, like the `BTreeMap<String, String>`
/// it replaces.
///
/// Why not that map: `plan` builds one per user, and a map with an owned name and an owned value
/// per attribute, searched by string comparison for every CSV column, was a large part of its time.
/// Here the names are a table shared by every user of one mapping (sorted, so iteration is in name
/// order), the values live in one text buffer, and a value is found by the name's index in the
/// table ([`Attributes::slot`]), so a writer can resolve its columns once per table rather than
/// once per user.
#[derive(Clone, Default)]
pub struct Attributes {
    /// Sorted, distinct attribute names; shared by all users a [`Mapper`] maps.
    names: Arc<Vec<String>>,
    /// All values, one after the other.
    text: String,
    /// By name index: the value's span in `text`, if the attribute is set.
    values: Vec<Option<(u32, u32)>>,
}

impl Attributes {
    pub fn new() -> Attributes {
        Attributes::default()
    }

    /// Empty attributes over a shared, sorted name table.
    pub(super) fn with_names(names: Arc<Vec<String>>, text: usize) -> Attributes {
        let n = names.len();
        Attributes {
            names,
            text: String::with_capacity(text),
            values: vec![None; n],
        }
    }

    /// This user's name table, for caches of [`Attributes::slot`]s (see [`NameTable::is`]).
    pub fn table(&self) -> NameTable {
        NameTable(self.names.clone())
    }

    /// The index of `name` in this user's name table (the same for every user whose table
    /// [`NameTable::is`] this one).
    pub fn slot(&self, name: &str) -> Option<usize> {
        // A mapping names a dozen attributes or so: a scan that compares lengths first beats a
        // binary search of `memcmp` calls (the router asks for the verified flags per user).
        if self.names.len() <= 32 {
            return self
                .names
                .iter()
                .position(|n| crate::bytes::same(n.as_bytes(), name.as_bytes()));
        }
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    /// The value in slot `i` (see [`Attributes::slot`]).
    #[inline]
    pub fn get_slot(&self, i: usize) -> Option<&str> {
        self.values[i].map(|(s, e)| &self.text[s as usize..e as usize])
    }

    #[inline]
    pub(super) fn set_slot(&mut self, i: usize, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.values[i] = Some((start, self.text.len() as u32));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.slot(name).and_then(|i| self.get_slot(i))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`, replacing an earlier value (adds the name to this user's table if
    /// needed: a slow path for tests and tools, not for the mapper).
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let name = name.as_ref();
        let i = match self.slot(name) {
            Some(i) => i,
            None => {
                let at = self.names.partition_point(|n| n.as_str() < name);
                Arc::make_mut(&mut self.names).insert(at, name.to_string());
                self.values.insert(at, None);
                at
            }
        };
        self.set_slot(i, value.as_ref());
    }

    /// Set attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.get_slot(i).map(|v| (n.as_str(), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The attributes as a map (for the AdminCreateUser writer and the directory, off the hot
    /// path).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A handle on the name table of some [`Attributes`]; holding it keeps the table alive, so that
/// [`NameTable::is`] (a pointer comparison) cannot be fooled by a new table at the same address.
#[derive(Clone, Debug)]
pub struct NameTable(Arc<Vec<String>>);

impl NameTable {
    /// Whether `a` uses this very table, so that slots found in it apply to `a`.
    #[inline]
    pub fn is(&self, a: &Attributes) -> bool {
        Arc::ptr_eq(&self.0, &a.names)
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Attributes {
        let mut a = Attributes::new();
        for (k, v) in iter {
            a.insert(k, v);
        }
        a
    }
}

impl From<BTreeMap<String, String>> for Attributes {
    fn from(m: BTreeMap<String, String>) -> Attributes {
        m.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = str;
    fn index(&self, name: &str) -> &str {
        self.get(name).expect("attribute is set")
    }
}
