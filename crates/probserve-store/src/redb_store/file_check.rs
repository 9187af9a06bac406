//! Refusing files that are not a valid store, before and while redb opens them.
//!
//! redb treats an empty file as a new database and panics on some damaged ones.
//! Neither may reach the operator: [`check_existing`] looks at the file first
//! (regular file, not empty, long enough for a header, redb's signature, a
//! header layout that fits in the file), and
//! [`guarded`] turns whatever redb still reports about the file, a panic
//! included, into [`StoreError::NotAStore`] without printing a backtrace.

use std::cell::Cell;
use std::io::Read as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

use redb::{Database, DatabaseError, StorageError};

use super::backend_error;
use crate::error::{Result, StoreError};

/// The first bytes of every redb file (redb 2's `MAGICNUMBER`).
const REDB_SIGNATURE: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// redb 2's file header: 64 bytes of database header and two 128-byte commit slots.
const REDB_HEADER_BYTES: u64 = 64 + 2 * 128;

fn not_a_store(path: &Path, problem: impl Into<String>) -> StoreError {
    StoreError::NotAStore {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Checks an existing file before redb sees it.
pub(super) fn check_existing(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Err(not_a_store(path, "it is not a regular file"));
    }
    let len = meta.len();
    if len == 0 {
        return Err(not_a_store(
            path,
            "the file is empty (0 bytes), so everything it held is gone (a failed copy or a full disk?)",
        ));
    }
    if len < REDB_HEADER_BYTES {
        return Err(not_a_store(
            path,
            format!(
                "the file is {len} bytes, shorter than a store's {REDB_HEADER_BYTES}-byte header (truncated?)"
            ),
        ));
    }
    let mut head = [0u8; 32];
    std::fs::File::open(path)?.read_exact(&mut head)?;
    if head[..REDB_SIGNATURE.len()] != REDB_SIGNATURE {
        return Err(not_a_store(
            path,
            "it does not start with the redb file signature (another kind of file, or its header was overwritten)",
        ));
    }
    match layout_len(&head) {
        None => Err(not_a_store(
            path,
            "its header describes an impossible layout (the header is corrupted)",
        )),
        Some(need) if len < need => Err(not_a_store(
            path,
            format!(
                "the file is {len} bytes but its header says the store spans {need} bytes (truncated?)"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The file length redb 2's header says the store needs (redb asserts the file is
/// at least this long when it opens it), or `None` if the fields are impossible.
/// Header layout (little-endian u32s): page size at 12, region header pages at
/// 16, region max data pages at 20, full regions at 24, trailing region pages at 28.
fn layout_len(head: &[u8; 32]) -> Option<u64> {
    let field = |at: usize| -> Option<u64> {
        let bytes: [u8; 4] = head.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(u32::from_le_bytes(bytes)))
    };
    let page = field(12)?;
    let (header_pages, max_data_pages) = (field(16)?, field(20)?);
    let (full_regions, trailing) = (field(24)?, field(28)?);
    if !page.is_power_of_two() || !(512..=1 << 20).contains(&page) {
        return None;
    }
    let full_len = header_pages
        .checked_add(max_data_pages)?
        .checked_mul(page)?;
    let regions = full_regions + u64::from(trailing > 0);
    let last_len = if trailing > 0 {
        header_pages.checked_add(trailing)?.checked_mul(page)?
    } else {
        full_len
    };
    let before_last = regions.checked_sub(1)?.checked_mul(full_len)?;
    page.checked_add(before_last)?.checked_add(last_len)
}

/// Runs a redb open, mapping file problems and panics to [`StoreError::NotAStore`].
pub(super) fn guarded(
    path: &Path,
    open: impl FnOnce() -> std::result::Result<Database, DatabaseError>,
) -> Result<Database> {
    match guarded_result(path, || Ok(open()))? {
        Ok(db) => Ok(db),
        Err(DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Backend(format!(
            "store file {} is already open (by this or another process)",
            path.display()
        ))),
        Err(DatabaseError::UpgradeRequired(v)) => Err(not_a_store(
            path,
            format!("it uses redb file format {v}, which this build cannot read"),
        )),
        Err(DatabaseError::Storage(StorageError::Corrupted(msg))) => {
            Err(not_a_store(path, format!("it is corrupted ({msg})")))
        }
        Err(DatabaseError::Storage(StorageError::ValueTooLarge(n))) => Err(not_a_store(
            path,
            format!("it is corrupted (a record claims {n} bytes)"),
        )),
        Err(other) => Err(backend_error(other)),
    }
}

/// Runs `f`; a panic inside it (redb on a damaged file) becomes
/// [`StoreError::NotAStore`], and is not printed.
pub(super) fn guarded_result<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    out.unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .and_then(|m| m.lines().next())
            .unwrap_or("no message");
        Err(not_a_store(
            path,
            format!("it is corrupted (the storage engine failed reading it: {msg})"),
        ))
    })
}

thread_local! {
    /// Set while this thread runs a guarded open: its panics are reported as errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the panic hook once so that panics of a guarded open print nothing;
/// every other panic goes to the hook that was installed before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}
