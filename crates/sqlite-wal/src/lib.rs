//! A SQLite VFS that hands each transaction's WAL frames to the kernel in one write.
//!
//! SQLite appends a committed transaction to the WAL frame by frame, each frame as two
//! writes: its 24-byte header, then its page. A group of sends touches about twenty pages,
//! so its commit was some forty `pwrite` calls, all made while the one write lock is held.
//! This VFS is the platform's own with one change to WAL files: a write that continues the
//! previous one is kept in memory, and the run goes to the file in one call when the commit
//! frame's page arrives (or sooner, when anything else is asked of the file). A write that
//! does not continue the previous one (the first after another connection's commit, the
//! WAL's own header) goes straight through. The bytes, their offsets and their order are
//! SQLite's; only the number of calls changes.
//!
//! Why other readers never see less than SQLite wrote: a frame is read only once the WAL
//! index's header counts it, and SQLite updates that header after the commit frame's write
//! has returned, by which time the run is in the file. Within the writer's own connection,
//! every read, sync, truncation or size query first writes what is kept.
//!
//! The one contract: connections opened with this VFS must not spill their page cache
//! mid-transaction (`PRAGMA cache_spill = OFF`). A spilled frame is written without a
//! commit frame after it, and if its transaction then rolled back, the kept bytes could be
//! written after another connection had appended its own frames at the same place.

use std::cell::Cell;
use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// The name connections open the VFS by.
pub const NAME: &str = "ami-wal";
const C_NAME: &CStr = c"ami-wal";

/// A WAL frame's header: page number, then the database size for a commit frame (0 for
/// any other frame), then salts and checksums.
const FRAME_HEADER: c_int = 24;

/// Kept bytes are written once they reach this much, so a large transaction stays bounded.
pub const MAX_KEPT: usize = 8 << 20;

/// A buffer grown past this by a large transaction is given back after its flush.
const KEPT_CAPACITY: usize = 1 << 20;

/// The most the platform VFS writes in one call: it masks larger amounts to their low 17
/// bits, so a larger write would come back short.
const MAX_WRITE: usize = 0x1_ffff;

/// The platform VFS this one wraps, and where its file handles end in ours.
struct Base {
    vfs: *mut ffi::sqlite3_vfs,
    wal_at: usize,
}

// SAFETY: the platform VFS is a static structure SQLite never frees, and SQLite's own
// calls through it are thread-safe.
unsafe impl Send for Base {}
// SAFETY: as above; `Base` is never written after it is built.
unsafe impl Sync for Base {}

static BASE: OnceLock<Result<Base, c_int>> = OnceLock::new();

/// Registers the VFS (once per process; later calls return the first call's outcome). It is
/// not made the default: only connections that ask for it by [`NAME`] use it.
pub fn register() -> Result<(), c_int> {
    BASE.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` with a null name returns the default VFS, a static
        // structure, initialising the library first if needed.
        let base = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        if base.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        // SAFETY: `base` is a valid, live VFS (above).
        let base_size =
            usize::try_from(unsafe { (*base).szOsFile }).map_err(|_| ffi::SQLITE_ERROR)?;
        let wal_at = base_size.next_multiple_of(std::mem::align_of::<Wal>());
        // SAFETY: as above; copying the structure keeps its methods and their `pAppData`.
        let mut vfs = unsafe { *base };
        vfs.szOsFile =
            c_int::try_from(wal_at + std::mem::size_of::<Wal>()).map_err(|_| ffi::SQLITE_ERROR)?;
        vfs.zName = C_NAME.as_ptr();
        vfs.pNext = ptr::null_mut();
        vfs.xOpen = Some(open);
        // SQLite keeps the pointer for the life of the process.
        let vfs = Box::into_raw(Box::new(vfs));
        // SAFETY: `vfs` is a complete VFS that lives for the rest of the process.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        Ok(Base { vfs: base, wal_at })
    })
    .as_ref()
    .map(|_| ())
    .map_err(|rc| *rc)
}

/// What a WAL file handle carries after the platform's own handle.
#[repr(C)]
struct Wal {
    /// The platform's methods with the writing ones replaced; the handle points here.
    methods: ffi::sqlite3_io_methods,
    base: *const ffi::sqlite3_io_methods,
    kept: Kept,
}

/// Bytes written by SQLite and not yet given to the file.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    at: i64,
    /// Where the most recent write ended, kept or not.
    end: Option<i64>,
    /// Where the page starts when the most recent write was a commit frame's header.
    commit_page_at: Option<i64>,
}

fn base() -> &'static Base {
    match BASE.get() {
        Some(Ok(base)) => base,
        // SQLite calls into the VFS only after `register` succeeded.
        _ => unreachable!("the WAL VFS is used before it is registered"),
    }
}

/// # Safety
/// `file` is a handle opened by `open` with the WAL flag.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Wal {
    // SAFETY: `open` wrote a `Wal` at `wal_at` in every WAL handle, which lives until
    // `close`; SQLite uses a handle from one thread at a time.
    unsafe { &mut *file.cast::<u8>().add(base().wal_at).cast::<Wal>() }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = base();
    // SAFETY: the platform VFS is valid (`register`), and `file` has room for its handle
    // at offset 0 (our `szOsFile` is larger).
    let rc = unsafe {
        match (*base.vfs).xOpen {
            Some(open) => open(base.vfs, name, file, flags, out_flags),
            None => ffi::SQLITE_ERROR,
        }
    };
    if rc != ffi::SQLITE_OK || flags & ffi::SQLITE_OPEN_WAL == 0 {
        return rc;
    }
    // SAFETY: after a successful open, `file` holds the platform's methods.
    let base_methods = unsafe { (*file).pMethods };
    if base_methods.is_null() {
        return rc;
    }
    // SAFETY: `base_methods` points to the platform's static method table.
    let mut methods = unsafe { *base_methods };
    methods.xClose = Some(close);
    methods.xRead = Some(read);
    methods.xWrite = Some(write);
    methods.xTruncate = Some(truncate);
    methods.xSync = Some(sync);
    methods.xFileSize = Some(file_size);
    methods.xFileControl = Some(file_control);
    let slot = file.cast::<u8>().wrapping_add(base.wal_at).cast::<Wal>();
    // SAFETY: `slot` is inside the handle SQLite allocated (`szOsFile`), suitably aligned
    // (`wal_at` is a multiple of `Wal`'s alignment and SQLite allocates 8-aligned), and
    // not yet initialised.
    unsafe {
        slot.write(Wal {
            methods,
            base: base_methods,
            kept: Kept::default(),
        });
        (*file).pMethods = &raw const (*slot).methods;
    }
    rc
}

/// Gives the kept bytes to the file.
///
/// # Safety
/// `wal` belongs to `file`, a WAL handle opened by `open`.
unsafe fn flush(wal: &mut Wal, file: *mut ffi::sqlite3_file) -> c_int {
    if wal.kept.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let mut rc = ffi::SQLITE_OK;
    let mut at = wal.kept.at;
    for chunk in wal.kept.bytes.chunks(MAX_WRITE) {
        // Both fit: a chunk is at most `MAX_WRITE` bytes.
        let len = chunk.len() as c_int;
        // SAFETY: the caller's contract; `chunk` is a live buffer of `len` bytes.
        rc = unsafe { platform_write(wal.base, file, chunk.as_ptr().cast(), len, at) };
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += chunk.len() as i64;
    }
    wal.kept.bytes.clear();
    if wal.kept.bytes.capacity() > KEPT_CAPACITY {
        wal.kept.bytes = Vec::new();
    }
    rc
}

/// The platform's write, counted in tests.
///
/// # Safety
/// `base` is the platform's methods of `file`; `data` holds `amount` bytes.
unsafe fn platform_write(
    base: *const ffi::sqlite3_io_methods,
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    #[cfg(test)]
    tests::PLATFORM_WRITES.with(|n| n.set(n.get() + 1));
    // SAFETY: the caller's contract; the platform's write on its own handle.
    unsafe {
        match (*base).xWrite {
            Some(write) => write(file, data, amount, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite calls this only on handles `open` gave these methods to.
    let wal = unsafe { wal(file) };
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    let continues = wal.kept.end == Some(offset);
    let completes_commit = continues && wal.kept.commit_page_at == Some(offset);
    let rc = if continues {
        if wal.kept.bytes.is_empty() {
            wal.kept.at = offset;
        }
        wal.kept.bytes.extend_from_slice(bytes);
        ffi::SQLITE_OK
    } else {
        // SAFETY: as above.
        match unsafe { flush(wal, file) } {
            // SAFETY: SQLite's own arguments.
            ffi::SQLITE_OK => unsafe { platform_write(wal.base, file, data, amount, offset) },
            failed => failed,
        }
    };
    wal.kept.end = Some(offset + i64::from(amount));
    // A commit frame's header, kept or not: its page, next, ends the run.
    wal.kept.commit_page_at = (amount == FRAME_HEADER && bytes[4..8] != [0; 4])
        .then_some(offset + i64::from(FRAME_HEADER));
    if rc == ffi::SQLITE_OK && (completes_commit || wal.kept.bytes.len() >= MAX_KEPT) {
        // SAFETY: as above.
        return unsafe { flush(wal, file) };
    }
    rc
}

/// Declares a method that writes the kept bytes, then does what the platform's does.
macro_rules! flushing {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: SQLite calls this only on handles `open` gave these methods to.
            let wal = unsafe { wal(file) };
            // SAFETY: as above.
            let rc = unsafe { flush(wal, file) };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            // SAFETY: as above; the platform's method on its own handle.
            unsafe {
                match (*wal.base).$field {
                    Some(method) => method(file, $($arg),*),
                    None => ffi::SQLITE_IOERR,
                }
            }
        }
    };
}

flushing!(read, xRead, (data: *mut c_void, amount: c_int, offset: i64));
flushing!(truncate, xTruncate, (size: i64));
flushing!(platform_sync, xSync, (flags: c_int));
flushing!(file_size, xFileSize, (size: *mut i64));
flushing!(file_control, xFileControl, (op: c_int, arg: *mut c_void));

thread_local! {
    static SYNCS: Cell<u64> = const { Cell::new(0) };
}

/// How many times WAL files opened through this VFS were synced from this thread: the
/// evidence that a commit reached the disk before it returned. SQLite runs a connection's
/// statements in the calling thread, so a caller that owns the connection counts its own
/// syncs and no one else's.
pub fn wal_syncs_on_this_thread() -> u64 {
    SYNCS.with(Cell::get)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls this only on handles `open` gave these methods to.
    let rc = unsafe { platform_sync(file, flags) };
    if rc == ffi::SQLITE_OK {
        SYNCS.with(|n| n.set(n.get() + 1));
    }
    rc
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on handles `open` gave these methods to.
    let wal = unsafe { wal(file) };
    // SAFETY: as above.
    let flushed = unsafe { flush(wal, file) };
    // SAFETY: the `Wal` is moved out before the platform closes its handle, and SQLite
    // never uses the handle after `close`.
    let wal = unsafe { ptr::read(wal) };
    // SAFETY: the platform's close on its own handle.
    let closed = unsafe {
        match (*wal.base).xClose {
            Some(close) => close(file),
            None => ffi::SQLITE_OK,
        }
    };
    drop(wal);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

#[cfg(test)]
mod tests;
