//! Shared-memory objects: create, open, map, lock, rename, remove. Every `unsafe` block of the
//! library that touches the operating system or the mapping lives here (and in `guard.rs`, the
//! SIGBUS guard, and `fork.rs`).
#![allow(unsafe_code)]

use crate::name::SHM_DIR;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

/// Identity of an object: device and inode. A name that now points to another inode has been
/// replaced (taken over by a new writer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub dev: u64,
    pub ino: u64,
}

/// A mapping of (a prefix of) a shared-memory object. Several mappings of one object share its
/// descriptor, and with it the descriptor's locks.
pub(crate) struct Segment {
    fd: Arc<OwnedFd>,
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    guard: Option<crate::guard::Guard>,
}

// SAFETY: the mapping is shared memory accessed only through atomics or explicit copies; `fd` is
// thread-safe.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` exposes no unsynchronised interior mutability of process memory.
unsafe impl Sync for Segment {}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // The guard goes first: the SIGBUS handler must never map over an address range that is
        // no longer ours.
        drop(self.guard.take());
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, and no reference into the mapping
        // outlives `self` (views and loans hold the segment alive through an `Arc`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn path(object: &str) -> String {
    format!("{SHM_DIR}/{object}")
}

/// Why [`Segment::create_exclusive`] or [`Segment::grow_to`] failed.
#[derive(Debug)]
pub(crate) enum CreateFail {
    Errno(&'static str, Errno),
    NoSpace { needed: u64, available: u64 },
}

/// Checks that `size` bytes fit in the file system of `fd`, and reserves them: on tmpfs a later
/// page fault with the file system full is a SIGBUS, not an error we could report.
fn reserve(fd: &OwnedFd, size: u64) -> Result<(), CreateFail> {
    let vfs = rustix::fs::fstatvfs(fd).map_err(|e| CreateFail::Errno("fstatvfs", e))?;
    let st = rustix::fs::fstat(fd).map_err(|e| CreateFail::Errno("fstat", e))?;
    let have = st.st_size as u64;
    let available = vfs.f_bavail.saturating_mul(vfs.f_frsize);
    // A tmpfs mounted without a size limit (`size=0`) reports 0 blocks in total and 0 free: no
    // answer, so leave the verdict to `fallocate` below.
    if vfs.f_blocks != 0 && size.saturating_sub(have) > available {
        return Err(CreateFail::NoSpace {
            needed: size,
            available,
        });
    }
    rustix::fs::ftruncate(fd, size).map_err(|e| CreateFail::Errno("ftruncate", e))?;
    match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
        Err(Errno::NOSPC) => {
            // Give back what the failed reservation may have taken.
            let _ = rustix::fs::ftruncate(fd, have);
            Err(CreateFail::NoSpace {
                needed: size,
                available,
            })
        }
        Err(e) => Err(CreateFail::Errno("fallocate", e)),
    }
}

impl Segment {
    /// Creates object `object` exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), sets `mode` exactly
    /// (ignoring the umask), checks and reserves `size` bytes in /dev/shm, and maps it
    /// read-write. The object is zero-filled.
    pub fn create_exclusive(object: &str, size: u64, mode: u32) -> Result<Segment, CreateFail> {
        let fd = rustix::fs::open(
            path(object),
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| CreateFail::Errno("shm_open", e))?;
        let cleanup = |e: CreateFail| {
            let _ = unlink(object);
            e
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| cleanup(CreateFail::Errno("fchmod", e)))?;
        reserve(&fd, size).map_err(cleanup)?;
        Segment::map(Arc::new(fd), size, true).map_err(|e| cleanup(CreateFail::Errno("mmap", e)))
    }

    /// Opens `object` read-only (readers) or read-write, and maps its first `max_len` bytes (or
    /// all of it, if shorter). Never follows a symbolic link, never blocks on a FIFO, and refuses
    /// anything but a regular file with `Errno::NOTSUP` (`ELOOP` for a symbolic link).
    pub fn open(object: &str, writable: bool, max_len: u64) -> Result<Segment, Errno> {
        let access = if writable {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path(object), flags, Mode::empty())?;
        Segment::from_fd(fd, writable, max_len)
    }

    /// Maps the first `max_len` bytes (or all, if shorter) of an object already open as `fd`
    /// (one received over a socket, say); `Errno::NOTSUP` unless it is a regular file.
    pub fn from_fd(fd: OwnedFd, writable: bool, max_len: u64) -> Result<Segment, Errno> {
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Errno::NOTSUP);
        }
        Segment::map(Arc::new(fd), (st.st_size as u64).min(max_len), writable)
    }

    /// Creates an anonymous object (`memfd_create`, never linked into any directory) of `size`
    /// reserved bytes with permission bits `mode` and the given seals, and maps it read-write.
    /// The memory lives until the last descriptor and mapping of it are gone.
    pub fn memfd(
        label: &str,
        size: u64,
        mode: u32,
        seals: rustix::fs::SealFlags,
    ) -> Result<Segment, CreateFail> {
        use rustix::fs::MemfdFlags;
        let fd = rustix::fs::memfd_create(label, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| CreateFail::Errno("memfd_create", e))?;
        // The mode guards re-opening through /proc/PID/fd: a peer of another uid that was handed
        // a read-only descriptor cannot re-open it for writing.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| CreateFail::Errno("fchmod", e))?;
        reserve(&fd, size)?;
        rustix::fs::fcntl_add_seals(&fd, seals).map_err(|e| CreateFail::Errno("F_ADD_SEALS", e))?;
        Segment::map(Arc::new(fd), size, true).map_err(|e| CreateFail::Errno("mmap", e))
    }

    /// The object's seals (`F_GET_SEALS`); `Errno::INVAL` for an object that cannot be sealed.
    pub fn seals(&self) -> Result<rustix::fs::SealFlags, Errno> {
        rustix::fs::fcntl_get_seals(&*self.fd)
    }

    /// A new open file description of the same object (through `/proc/self/fd`), read-only or
    /// read-write: its own locks, independent of ours. The object's mode decides whether we may.
    pub fn reopen(&self, writable: bool) -> Result<OwnedFd, Errno> {
        let access = if writable {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        let at = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        rustix::fs::open(at, access | OFlags::CLOEXEC, Mode::empty())
    }

    /// A new mapping of the first `len` bytes of the same object (sharing its descriptor);
    /// `Errno::RANGE` if the object is now shorter.
    pub fn remap(&self, len: u64) -> Result<Segment, Errno> {
        if self.size()? < len {
            return Err(Errno::RANGE);
        }
        Segment::map(self.fd.clone(), len, self.writable)
    }

    fn map(fd: Arc<OwnedFd>, size: u64, writable: bool) -> Result<Segment, Errno> {
        let len = usize::try_from(size).map_err(|_| Errno::FBIG)?;
        if len == 0 {
            return Ok(Segment {
                fd,
                ptr: NonNull::dangling(),
                len: 0,
                writable,
                guard: None,
            });
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh mapping at an address the kernel picks (null hint) cannot alias any Rust
        // object; `fd` is a valid shared-memory descriptor of at least `len` bytes (its size, read
        // just now). If another process shrinks the object later, an access beyond the new end
        // faults; the guard registered below turns that fault into a flag instead of a SIGBUS
        // death.
        let ptr = unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, &*fd, 0)?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::INVAL)?;
        // SAFETY: `ptr`/`len` is the mapping just made, page-aligned, owned by the `Segment`,
        // whose `Drop` drops the guard before `munmap`.
        let guard = unsafe { crate::guard::register(ptr.as_ptr(), len) }.ok();
        Ok(Segment {
            fd,
            ptr,
            len,
            writable,
            guard,
        })
    }

    /// Mapped length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` once an access to this mapping faulted because the object was truncated under it
    /// (the faulting pages now read as zeros).
    #[inline]
    pub fn faulted(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.faulted())
    }

    /// The object's current size.
    pub fn size(&self) -> Result<u64, Errno> {
        Ok(rustix::fs::fstat(&*self.fd)?.st_size as u64)
    }

    /// Extends the object to `size` bytes, reserving them (the writer's growth).
    pub fn grow_to(&self, size: u64) -> Result<(), CreateFail> {
        reserve(&self.fd, size)
    }

    /// The object's device and inode.
    pub fn identity(&self) -> Result<Identity, Errno> {
        let st = rustix::fs::fstat(&*self.fd)?;
        Ok(Identity {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Owner uid, mode bits and size of the object.
    pub fn stat(&self) -> Result<(u32, u32, u64), Errno> {
        let st = rustix::fs::fstat(&*self.fd)?;
        Ok((st.st_uid, st.st_mode & 0o7777, st.st_size as u64))
    }

    /// `true` if this process's effective uid owns the object.
    pub fn owned_by_us(&self) -> bool {
        self.stat()
            .is_ok_and(|(uid, _, _)| uid == rustix::process::geteuid().as_raw())
    }

    /// An open-file-description lock request on byte `offset`; `Ok(None)` if `F_OFD_GETLK` says
    /// nothing conflicts, or `F_OFD_SETLK` succeeded.
    fn ofd(&self, cmd: libc::c_int, kind: libc::c_int, offset: u64) -> Result<bool, Errno> {
        // SAFETY: `flock` is a plain C struct for which all-zero bytes is a valid value.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset as libc::off_t;
        fl.l_len = 1;
        fl.l_pid = 0; // required for open-file-description locks
                      // SAFETY: `fd` is a valid open descriptor and `fl` a valid `struct flock` that lives for
                      // the call; neither F_OFD_SETLK nor F_OFD_GETLK waits.
        let r = unsafe { libc::fcntl(self.fd.as_fd().as_raw_fd(), cmd, &mut fl) };
        if r != 0 {
            return match Errno::from_raw_os_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ) {
                Errno::AGAIN | Errno::ACCESS => Ok(false),
                e => Err(e),
            };
        }
        Ok(cmd != libc::F_OFD_GETLK || fl.l_type == libc::F_UNLCK as libc::c_short)
    }

    /// Takes an exclusive lock on byte `offset` without waiting (needs a writable descriptor);
    /// `Ok(false)` if another descriptor holds a lock on it. The kernel drops the lock when the
    /// last descriptor sharing it closes, so it dies with its process.
    pub fn try_lock_byte(&self, offset: u64) -> Result<bool, Errno> {
        self.ofd(libc::F_OFD_SETLK, libc::F_WRLCK, offset)
    }

    /// Releases a lock taken with [`Segment::try_lock_byte`].
    pub fn unlock_byte(&self, offset: u64) {
        let _ = self.ofd(libc::F_OFD_SETLK, libc::F_UNLCK, offset);
    }

    /// `true` if some descriptor holds an exclusive lock on byte `offset`. Shared locks, which a
    /// read-only descriptor can take, do not count: a reader cannot fake a writer.
    pub fn byte_write_locked(&self, offset: u64) -> Result<bool, Errno> {
        Ok(!self.ofd(libc::F_OFD_GETLK, libc::F_RDLCK, offset)?)
    }

    /// `true` if a writer holds this channel object (its exclusive lock on byte 0).
    pub fn writer_alive(&self) -> Result<bool, Errno> {
        self.byte_write_locked(0)
    }

    fn check(&self, offset: usize, len: usize, align: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len) && offset % align == 0,
            "shared-memory access out of bounds: {offset}+{len} of {} (a layout bug: offsets are validated before use)",
            self.len
        );
    }

    /// Asks the processor to start bringing the cache line at `offset` into this core's cache
    /// (with `write`, in a state that lets this core write it), so that several lines another
    /// core just wrote travel at once rather than one after another. A hint: it changes no
    /// memory and no value any access returns; offsets out of bounds are ignored.
    #[inline]
    pub fn prefetch(&self, offset: usize, write: bool) {
        if offset >= self.len {
            return;
        }
        let p = self.ptr.as_ptr().wrapping_add(offset);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache: it never faults, changes no memory and no
        // register, and its address is inside the mapping. Both opcodes are hints that every
        // x86-64 processor executes (as a no-op where it does not implement them).
        unsafe {
            if write {
                std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
            } else {
                std::arch::asm!("prefetcht0 [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (p, write);
    }

    /// The atomic `u32` at `offset`. Panics if out of bounds or misaligned (offsets come from the
    /// validated geometry, so this is a bug check, not input handling).
    ///
    /// Through a read-only mapping only relaxed loads are defined (and `FUTEX_WAIT`); readers
    /// follow them with fences where they need ordering.
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and 4-aligned (checked; the mapping is page-aligned); the memory lives
        // as long as `self`; every process accesses these bytes only atomically. On a read-only
        // mapping callers only load (relaxed), which does not write.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// The atomic `u64` at `offset`. Panics as [`Segment::atomic_u32`].
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `atomic_u32`, with 8-byte alignment (64-bit targets load 8 aligned bytes
        // with one instruction that needs no write access; see the target check in `layout`).
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// Copies `dst.len()` bytes at `offset` out of the mapping. Another process may be writing
    /// them unless the caller pinned them; an unpinned copy is validated (seqlock) before use.
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
        // slot bytes, and it claimed this slot (odd stamp, no pin) first.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len())
        }
    }

    /// Reads a plain-old-data record at `offset` (a copy; validate before use).
    pub fn read<T: bytemuck::Pod>(&self, offset: usize) -> T {
        let mut v: T = bytemuck::Zeroable::zeroed();
        self.copy_out(offset, bytemuck::bytes_of_mut(&mut v));
        v
    }

    /// Writes a plain-old-data record at `offset` (writer only).
    pub fn write<T: bytemuck::Pod>(&self, offset: usize, v: &T) {
        self.copy_in(offset, bytemuck::bytes_of(v));
    }

    /// A shared view of `len` bytes at `offset`.
    ///
    /// # Safety
    /// No process may write these bytes while the returned slice lives: the caller holds a pin on
    /// the slot whose stamp it verified after pinning.
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked); immutable for the slice's life per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }

    /// A mutable view of `len` bytes at `offset`.
    ///
    /// # Safety
    /// Writer only, on a slot it claimed (odd stamp, no pin), with no other slice of the same
    /// bytes alive in this process.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(self.writable, "slice_mut on a read-only mapping");
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked) of a writable mapping; exclusive per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) }
    }

    /// A separate read-write mapping of `len` bytes at `offset` (page-aligned) of the same object,
    /// for a loan handed to a runtime that may keep pointers into it; see [`LoanMap`].
    pub fn map_loan(&self, offset: u64, len: usize) -> Result<LoanMap, Errno> {
        assert!(self.writable && offset % 4096 == 0, "loans map whole pages");
        let len = len.max(1);
        // SAFETY: a fresh shared mapping at an address the kernel picks; `offset + len` lies within
        // the object (the slot was validated against it).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &*self.fd,
                offset,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::INVAL)?;
        // SAFETY: as in `map`: our own fresh mapping; `retire` and `Drop` drop the guard before
        // the pages are replaced or unmapped.
        let guard = unsafe { crate::guard::register(ptr.as_ptr(), len) }.ok();
        Ok(LoanMap {
            ptr,
            len,
            retired: false.into(),
            guard: guard.into(),
        })
    }
}

/// A loan's own mapping of its slot. While the loan is open it is the slot; once the loan is
/// published or discarded [`LoanMap::retire`] puts private zero pages in its place, so a pointer
/// kept by a garbage-collected runtime (a NumPy slice of the loan, say) can still be written
/// through, harmlessly, and never changes a published frame.
pub(crate) struct LoanMap {
    ptr: NonNull<u8>,
    len: usize,
    retired: std::sync::atomic::AtomicBool,
    guard: std::sync::Mutex<Option<crate::guard::Guard>>,
}

// SAFETY: the mapping is plain memory; access goes through `&mut self` or raw pointers whose users
// uphold their own contracts.
unsafe impl Send for LoanMap {}
// SAFETY: as above.
unsafe impl Sync for LoanMap {}

impl LoanMap {
    /// Start of the mapping.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Replaces the mapping by private zero pages at the same address (once).
    pub fn retire(&self) {
        if self.retired.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        drop(self.guard.lock().unwrap_or_else(|p| p.into_inner()).take());
        // SAFETY: `ptr`/`len` is our own mapping; MAP_FIXED replaces exactly those pages with fresh
        // anonymous ones. Rust references into the old pages (the loan's slices) ended with the
        // loan; raw pointers held elsewhere now point at private memory.
        let r = unsafe {
            rustix::mm::mmap_anonymous(
                self.ptr.as_ptr().cast(),
                self.len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::FIXED,
            )
        };
        if r.is_err() {
            // Could not swap the pages: make them inaccessible instead of leaving them shared.
            // SAFETY: our own mapping, as above.
            let _ = unsafe {
                rustix::mm::mprotect(
                    self.ptr.as_ptr().cast(),
                    self.len,
                    rustix::mm::MprotectFlags::empty(),
                )
            };
        }
    }
}

impl Drop for LoanMap {
    fn drop(&mut self) {
        drop(
            self.guard
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        // SAFETY: exactly the mapping `map_loan` made; no reference outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
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
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::renameat_with(&dir, from, &dir, to, flags)
}

/// Removes object `object`.
pub(crate) fn unlink(object: &str) -> Result<(), Errno> {
    rustix::fs::unlink(path(object))
}

/// The credentials of the peer of a connected Unix socket (`SO_PEERCRED`): pid, uid, gid. The
/// pid is 0 when the peer lives in another PID namespace (another container), which is why this
/// does not go through rustix's `UCred`, whose pid cannot be 0.
pub(crate) fn peer_cred(sock: rustix::fd::BorrowedFd<'_>) -> Result<(u32, u32, u32), Errno> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `sock` is a valid descriptor; `cred` is a writable `ucred` of `len` bytes that lives
    // for the call, and the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ));
    }
    Ok((cred.pid.max(0) as u32, cred.uid, cred.gid))
}

/// The supplementary groups of the peer of a connected Unix socket (`SO_PEERGROUPS`), empty if
/// the kernel does not tell.
pub(crate) fn peer_groups(sock: rustix::fd::BorrowedFd<'_>) -> Vec<u32> {
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: `sock` is a valid descriptor; `groups` is a writable buffer of `len` bytes that
    // lives for the call, and the kernel writes at most `len` bytes and stores the length used.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Vec::new();
    }
    groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    groups
}
