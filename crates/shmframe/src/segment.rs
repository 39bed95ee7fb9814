//! Shared-memory objects: create, open, map, lock, rename, remove. Every `unsafe` block of the
//! library that touches the operating system or the mapping lives here.
#![allow(unsafe_code)]

use crate::layout::{HeaderStatic, MAX_SLOTS};
use crate::name::SHM_DIR;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{FlockOperation, Mode};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Mutex;

/// Identity of an object: device and inode. A name that now points to another inode has been
/// replaced (grown or taken over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub dev: u64,
    pub ino: u64,
}

/// A mapped shared-memory object.
pub(crate) struct Segment {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// Zero-copy views of this process per slot; the byte-range lock is taken on 0→1 and dropped
    /// on 1→0 (locks of one open file description do not nest).
    pins: Mutex<[u32; MAX_SLOTS as usize]>,
}

// SAFETY: the mapping is shared memory accessed only through atomics or explicit copies; `fd` and
// the pin table are thread-safe (the table is behind a mutex).
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` exposes no unsynchronised interior mutability of process memory.
unsafe impl Sync for Segment {}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, and no reference into the mapping
        // outlives `self` (views and loans hold the segment alive through an `Arc`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

pub(crate) fn shm_name(object: &str) -> String {
    format!("/{object}")
}

impl Segment {
    /// Creates object `object` exclusively (O_CREAT|O_EXCL), takes the writer's exclusive
    /// `flock`, sets `mode` exactly (ignoring the umask), checks and reserves `size` bytes in
    /// /dev/shm, and maps it read-write. The object is zero-filled.
    pub fn create_exclusive(object: &str, size: u64, mode: u32) -> Result<Segment, CreateFail> {
        let fd = shm::open(
            shm_name(object),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| CreateFail::Errno("shm_open", e))?;
        let cleanup = |e: CreateFail| {
            let _ = shm::unlink(shm_name(object));
            e
        };
        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| cleanup(CreateFail::Errno("flock", e)))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| cleanup(CreateFail::Errno("fchmod", e)))?;
        let vfs =
            rustix::fs::fstatvfs(&fd).map_err(|e| cleanup(CreateFail::Errno("fstatvfs", e)))?;
        let available = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        // A tmpfs mounted without a size limit (`size=0`) reports 0 blocks in total and 0 free:
        // no answer, so leave the verdict to `fallocate` below.
        if vfs.f_blocks != 0 && size > available {
            return Err(cleanup(CreateFail::NoSpace {
                needed: size,
                available,
            }));
        }
        rustix::fs::ftruncate(&fd, size).map_err(|e| cleanup(CreateFail::Errno("ftruncate", e)))?;
        // Reserve the pages now: on tmpfs a later page fault with the file system full is a
        // SIGBUS, not an error we could report.
        match rustix::fs::fallocate(&fd, rustix::fs::FallocateFlags::empty(), 0, size) {
            Ok(()) => {}
            Err(Errno::NOSPC) => {
                return Err(cleanup(CreateFail::NoSpace {
                    needed: size,
                    available,
                }))
            }
            Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => {}
            Err(e) => return Err(cleanup(CreateFail::Errno("fallocate", e))),
        }
        Segment::map(fd, size, true).map_err(|e| cleanup(CreateFail::Errno("mmap", e)))
    }

    /// Opens `object` read-only (readers) or read-write, and maps all of it.
    pub fn open(object: &str, writable: bool) -> Result<Segment, Errno> {
        let flags = if writable {
            shm::OFlags::RDWR
        } else {
            shm::OFlags::RDONLY
        };
        let fd = shm::open(shm_name(object), flags, Mode::empty())?;
        let size = rustix::fs::fstat(&fd)?.st_size as u64;
        Segment::map(fd, size, writable)
    }

    fn map(fd: OwnedFd, size: u64, writable: bool) -> Result<Segment, Errno> {
        let len = usize::try_from(size).map_err(|_| Errno::FBIG)?;
        if len == 0 {
            return Ok(Segment {
                fd,
                ptr: NonNull::dangling(),
                len: 0,
                writable,
                pins: Mutex::new([0; MAX_SLOTS as usize]),
            });
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh mapping at an address the kernel picks (null hint) cannot alias any Rust
        // object; `fd` is a valid shared-memory descriptor of at least `len` bytes (its size, read
        // just now; if another process shrinks it later, accesses beyond the new end fault with
        // SIGBUS, which is why writers hold the name exclusively and never shrink).
        let ptr =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, &fd, 0)? };
        Ok(Segment {
            fd,
            ptr: NonNull::new(ptr.cast()).ok_or(Errno::INVAL)?,
            len,
            writable,
            pins: Mutex::new([0; MAX_SLOTS as usize]),
        })
    }

    /// Mapped length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The object's device and inode.
    pub fn identity(&self) -> Result<Identity, Errno> {
        let st = rustix::fs::fstat(&self.fd)?;
        Ok(Identity {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Owner uid, mode bits and size of the object.
    pub fn stat(&self) -> Result<(u32, u32, u64), Errno> {
        let st = rustix::fs::fstat(&self.fd)?;
        Ok((st.st_uid, st.st_mode & 0o7777, st.st_size as u64))
    }

    /// `true` if some process holds the writer's exclusive `flock` on this object. The kernel
    /// drops the lock when the writer dies, however it dies, so unlike a pid this cannot be fooled
    /// by pid reuse.
    pub fn writer_alive(&self) -> Result<bool, Errno> {
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                rustix::fs::flock(&self.fd, FlockOperation::Unlock)?;
                Ok(false)
            }
            Err(Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Takes the writer's exclusive `flock`, without waiting. `Ok(false)` if another process holds
    /// a lock on the object.
    pub fn try_lock_writer(&self) -> Result<bool, Errno> {
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn ofd_lock(&self, kind: libc::c_short, offset: u64) -> Result<bool, Errno> {
        // SAFETY: `flock` is a plain C struct for which all-zero bytes is a valid value.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset as libc::off_t;
        fl.l_len = 1;
        fl.l_pid = 0; // required for open-file-description locks
                      // SAFETY: `fd` is a valid open descriptor and `fl` a valid `struct flock` that lives for
                      // the call; F_OFD_SETLK does not block.
        let r = unsafe { libc::fcntl(self.fd.as_fd().as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        if r == 0 {
            Ok(true)
        } else {
            match Errno::from_raw_os_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ) {
                Errno::AGAIN | Errno::ACCESS => Ok(false),
                e => Err(e),
            }
        }
    }

    /// Pins `slot` (at byte `offset`) for a zero-copy view: a shared byte-range lock that the
    /// writer's [`Segment::try_lock_slot_write`] cannot take while it is held. `Ok(false)` if the
    /// writer is writing the slot right now. The kernel drops the lock if this process dies.
    pub fn pin(&self, slot: u32, offset: u64) -> Result<bool, Errno> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        let n = &mut pins[slot as usize];
        if *n == 0 && !self.ofd_lock(libc::F_RDLCK as libc::c_short, offset)? {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }

    /// Releases a pin taken by [`Segment::pin`].
    pub fn unpin(&self, slot: u32, offset: u64) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        let n = &mut pins[slot as usize];
        *n = n.saturating_sub(1);
        if *n == 0 {
            let _ = self.ofd_lock(libc::F_UNLCK as libc::c_short, offset);
        }
    }

    /// The writer's claim on `slot` before overwriting it: `Ok(false)` if a reader pins it.
    pub fn try_lock_slot_write(&self, offset: u64) -> Result<bool, Errno> {
        self.ofd_lock(libc::F_WRLCK as libc::c_short, offset)
    }

    /// Releases the writer's claim on `slot`.
    pub fn unlock_slot_write(&self, offset: u64) {
        let _ = self.ofd_lock(libc::F_UNLCK as libc::c_short, offset);
    }

    fn check(&self, offset: usize, len: usize, align: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len) && offset % align == 0,
            "shared-memory access out of bounds: {offset}+{len} of {} (a layout bug: offsets are validated before use)",
            self.len
        );
    }

    /// The atomic `u32` at `offset`. Panics if out of bounds or misaligned (offsets come from the
    /// validated geometry, so this is a bug check, not input handling).
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and 4-aligned (checked; the mapping is page-aligned); the memory lives
        // as long as `self`; every process accesses these bytes only atomically, and an atomic
        // may be read through a read-only mapping (loads do not write).
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// The atomic `u64` at `offset`. Panics as [`Segment::atomic_u32`].
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `atomic_u32`, with 8-byte alignment.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// Copies `dst.len()` bytes at `offset` out of the mapping. Another process may be writing
    /// them; the caller validates the copy (seqlock) before trusting it.
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 1);
        // SAFETY: source in bounds (checked) and valid for reads for the mapping's life; `dst` is
        // a distinct Rust buffer. Concurrent writes by another process can make the copy torn but
        // not unsafe to hold as plain bytes; see `ring` for how torn copies are discarded.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// Copies `src` into the mapping at `offset` (writer only).
    pub fn copy_in(&self, offset: usize, src: &[u8]) {
        assert!(self.writable, "copy_in on a read-only mapping");
        self.check(offset, src.len(), 1);
        // SAFETY: destination in bounds (checked) of a writable mapping; only the writer stores to
        // slot bytes, and it claimed this slot (odd stamp + write lock) first.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len())
        }
    }

    /// Reads the static header fields (first 128 bytes).
    pub fn header_static(&self) -> HeaderStatic {
        let mut h: HeaderStatic = bytemuck::Zeroable::zeroed();
        self.copy_out(0, bytemuck::bytes_of_mut(&mut h));
        h
    }

    /// A shared view of `len` bytes at `offset`.
    ///
    /// # Safety
    /// No process may write these bytes while the returned slice lives: the caller holds a pin on
    /// the slot (see [`Segment::pin`]) whose stamp it verified after pinning.
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked); immutable for the slice's life per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }

    /// A mutable view of `len` bytes at `offset`.
    ///
    /// # Safety
    /// Writer only, on a slot it claimed (odd stamp and the slot's write lock held), with no other
    /// slice of the same bytes alive in this process.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(self.writable, "slice_mut on a read-only mapping");
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked) of a writable mapping; exclusive per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) }
    }
}

/// Why [`Segment::create_exclusive`] failed.
#[derive(Debug)]
pub(crate) enum CreateFail {
    Errno(&'static str, Errno),
    NoSpace { needed: u64, available: u64 },
}

/// Moves object `from` to `to` atomically within /dev/shm; with `replace == false` fails with
/// `EEXIST` if `to` exists.
pub(crate) fn rename(from: &str, to: &str, replace: bool) -> Result<(), Errno> {
    let flags = if replace {
        rustix::fs::RenameFlags::empty()
    } else {
        rustix::fs::RenameFlags::NOREPLACE
    };
    let dir = rustix::fs::open(
        SHM_DIR,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::renameat_with(&dir, from, &dir, to, flags)
}

/// Removes object `object`.
pub(crate) fn unlink(object: &str) -> Result<(), Errno> {
    shm::unlink(shm_name(object))
}
