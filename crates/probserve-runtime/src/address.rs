//! Site addresses: a `Copy` name plus up to three loop indices, built per site without allocation.
//!
//! Rust models use `&'static str` names (`Address::new("group/mu")`); hierarchy is part of the
//! name. Programs whose names are only known at run time (the model language) intern their site
//! names once into a table and use [`SiteId`]s (`Address::site(SiteId(3))`); the table is exposed
//! through [`crate::Model::site_name`] so errors and results can show the real name.

use std::fmt;

/// Maximum number of indices an address carries; deeper `at` calls fold into the last slot.
pub const MAX_DEPTH: usize = 3;

/// An interned site name: an index into the owning program's name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub u32);

/// The name part of an address.
#[derive(Debug, Clone, Copy, Eq)]
pub enum Name {
    /// A compile-time name such as `"mu"` or `"group/mu"`.
    Static(&'static str),
    /// An interned name owned by the program (see [`crate::Model::site_name`]).
    Site(SiteId),
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // The same literal usually has the same pointer: skip the byte comparison then.
            (Name::Static(a), Name::Static(b)) => {
                (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
            }
            (Name::Site(a), Name::Site(b)) => a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: static names hash by content.
        match self {
            Name::Static(s) => {
                state.write_u8(0);
                s.hash(state);
            }
            Name::Site(id) => {
                state.write_u8(1);
                id.hash(state);
            }
        }
    }
}

/// Resolves interned site ids to names (implemented by every [`crate::Model`] through
/// `site_name`, and by plain name tables).
pub trait SiteNames {
    /// The name of site `id`, if known.
    fn site_name(&self, id: SiteId) -> Option<&str>;
}

impl SiteNames for [String] {
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.get(id.0 as usize).map(String::as_str)
    }
}

impl SiteNames for Vec<String> {
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.as_slice().site_name(id)
    }
}

/// The address of a random choice, observation or factor: a name and up to [`MAX_DEPTH`] indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// The site name.
    pub name: Name,
    idx: [u32; MAX_DEPTH],
    depth: u8,
}

impl Address {
    /// An address with a static name and no indices.
    pub const fn new(name: &'static str) -> Self {
        Address {
            name: Name::Static(name),
            idx: [0; MAX_DEPTH],
            depth: 0,
        }
    }

    /// An address with an interned name and no indices.
    pub const fn site(id: SiteId) -> Self {
        Address {
            name: Name::Site(id),
            idx: [0; MAX_DEPTH],
            depth: 0,
        }
    }

    /// Append one index: `Address::new("z").at(3)` is `z[3]`.
    ///
    /// Beyond [`MAX_DEPTH`] levels the index is folded into the last slot by a mixing function;
    /// two distinct deep addresses may then collide, which is reported as a duplicate address.
    #[must_use]
    pub const fn at(mut self, i: u32) -> Self {
        if (self.depth as usize) < MAX_DEPTH {
            self.idx[self.depth as usize] = i;
            self.depth += 1;
        } else {
            let last = self.idx[MAX_DEPTH - 1];
            self.idx[MAX_DEPTH - 1] = last.wrapping_mul(0x9E37_79B1).rotate_left(7) ^ i;
        }
        self
    }

    /// Like [`Address::at`] with a `usize` index (values above `u32::MAX` are folded).
    #[must_use]
    pub const fn at_usize(self, i: usize) -> Self {
        let lo = i as u32;
        let hi = (i >> 32) as u32;
        if hi == 0 {
            self.at(lo)
        } else {
            self.at(lo ^ hi.wrapping_mul(0x85EB_CA6B))
        }
    }

    /// The indices of this address, outermost first.
    pub fn indices(&self) -> &[u32] {
        &self.idx[..self.depth as usize]
    }

    /// A displayable form that resolves interned names through `names`.
    pub fn display_with<'a, N: SiteNames + ?Sized>(
        &'a self,
        names: &'a N,
    ) -> impl fmt::Display + 'a {
        DisplayWith { addr: self, names }
    }

    fn fmt_name(&self, f: &mut fmt::Formatter<'_>, resolved: Option<&str>) -> fmt::Result {
        match (self.name, resolved) {
            (Name::Static(s), _) => f.write_str(s)?,
            (Name::Site(_), Some(s)) => f.write_str(s)?,
            (Name::Site(id), None) => write!(f, "#{}", id.0)?,
        }
        for i in self.indices() {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_name(f, None)
    }
}

struct DisplayWith<'a, N: ?Sized> {
    addr: &'a Address,
    names: &'a N,
}

impl<N: SiteNames + ?Sized> fmt::Display for DisplayWith<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resolved = match self.addr.name {
            Name::Site(id) => self.names.site_name(id),
            Name::Static(_) => None,
        };
        self.addr.fmt_name(f, resolved)
    }
}

/// A fast, deterministic hasher for addresses (FxHash-style; no per-process random state).
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Build-hasher for [`AddrHasher`].
pub type AddrBuildHasher = std::hash::BuildHasherDefault<AddrHasher>;

/// A hash map keyed by address with the fast deterministic hasher.
pub type AddrMap<V> = std::collections::HashMap<Address, V, AddrBuildHasher>;

/// A hash set of addresses with the fast deterministic hasher.
pub type AddrSet = std::collections::HashSet<Address, AddrBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_indices() {
        let a = Address::new("z").at(3).at(4);
        assert_eq!(a.to_string(), "z[3][4]");
        assert_eq!(a.indices(), &[3, 4]);
        let names = vec!["alpha".to_string(), "beta".to_string()];
        let b = Address::site(SiteId(1)).at(2);
        assert_eq!(b.display_with(&names).to_string(), "beta[2]");
        assert_eq!(b.to_string(), "#1[2]");
        assert_ne!(Address::new("z").at(1), Address::new("z").at(2));
        assert_ne!(Address::new("z").at(1), Address::new("z").at(1).at(0));
        assert_eq!(Address::new("group/mu"), Address::new("group/mu"));
    }

    #[test]
    fn deep_indices_fold() {
        let a = Address::new("w").at(1).at(2).at(3).at(4);
        let b = Address::new("w").at(1).at(2).at(3).at(5);
        assert_eq!(a.indices().len(), MAX_DEPTH);
        assert_ne!(a, b);
    }
}
