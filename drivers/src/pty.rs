//! Pseudo-terminal pairs that stand in for serial ports.
//!
//! A [`PtyPair`] is two ends of one virtual serial line. Whatever is written to the *master* end
//! comes out of the *slave* end, a real terminal device such as `/dev/pts/7` that any program can
//! open as if it were `/dev/ttyUSB0`. Croupier's simulators write a device's bytes into the master;
//! the daemon (or `picocom`, or a test through `tokio-serial`) opens the slave path.
//!
//! The terminal is put in raw mode, so `\r\n` and every other byte pass through untouched.
//!
//! The pair keeps its own slave descriptor open for as long as it lives. On Linux, when no process
//! holds the slave open, writes to the master fail with `EIO`; holding it means the simulator
//! survives the daemon closing and reopening the port (as it does when it reconnects).
//! Bytes that nobody reads stay queued in the kernel (a few dozen KiB at most); see
//! [`PtyMaster::discard_unread`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use croupier_drivers::pty::PtyPair;
//! use tokio::io::AsyncWriteExt;
//!
//! let mut pair = PtyPair::open()?;
//! pair.link("/tmp/croupier/wheel")?; // optional stable name, removed again on drop
//! println!("serial port on {}", pair.slave_path().display());
//! let mut master = pair.into_master()?; // needs a Tokio runtime
//! master.write_all(b"*X;1;001;17;0;027;0\r\n").await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::{openpty, OpenptyResult, Winsize};
use nix::sys::termios::{cfmakeraw, tcflush, tcgetattr, tcsetattr, FlushArg, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// Why a pseudo-terminal could not be set up. Each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// `openpty` failed.
    #[error(
        "could not allocate a pseudo-terminal ({errno}): check that /dev/ptmx exists, that devpts \
         is mounted on /dev/pts, and that neither the open-file limit (ulimit -n) nor \
         kernel.pty.max is exhausted"
    )]
    Open {
        /// The system error.
        errno: Errno,
    },
    /// Raw mode or descriptor flags could not be set on the new terminal.
    #[error("could not configure the new pseudo-terminal ({step}: {errno}); this is unexpected on Linux, report it with the kernel version")]
    Configure {
        /// Which setting failed.
        step: &'static str,
        /// The system error.
        errno: Errno,
    },
    /// The slave device's name (such as `/dev/pts/7`) could not be found.
    #[error("could not find the device name of the new pseudo-terminal ({errno}): check that devpts is mounted on /dev/pts")]
    Name {
        /// The system error.
        errno: Errno,
    },
    /// The link path is taken by something that is not a symbolic link.
    #[error(
        "refusing to replace {}: it exists and is not a symbolic link; remove it or choose \
         another link path",
        path.display()
    )]
    LinkOccupied {
        /// The path asked for.
        path: PathBuf,
    },
    /// The symbolic link could not be created.
    #[error(
        "could not create the symbolic link {} -> {} ({cause}): check that its directory is \
         writable by this user",
        path.display(),
        target.display()
    )]
    Link {
        /// The path asked for.
        path: PathBuf,
        /// The slave device it should point to.
        target: PathBuf,
        /// The system error.
        cause: io::Error,
    },
    /// The master could not be registered with Tokio.
    #[error(
        "could not watch the pseudo-terminal for readiness ({cause}): it must be used from inside \
         a Tokio runtime with I/O enabled"
    )]
    Register {
        /// The system error.
        cause: io::Error,
    },
    /// Discarding unread input failed.
    #[error("could not discard unread bytes on {} ({errno})", path.display())]
    Flush {
        /// The slave device.
        path: PathBuf,
        /// The system error.
        errno: Errno,
    },
}

/// A freshly opened pseudo-terminal in raw mode: the master end, the slave end (held open) and the
/// slave's device path. Opening it needs no async runtime; [`PtyPair::into_master`] does.
#[derive(Debug)]
pub struct PtyPair {
    master: OwnedFd,
    slave: OwnedFd,
    slave_path: PathBuf,
    link: Option<Link>,
}

impl PtyPair {
    /// Allocates a pseudo-terminal and puts it in raw mode (`cfmakeraw`: no echo, no line editing,
    /// no CR/LF translation, 8 data bits). Both descriptors are close-on-exec, so programs the
    /// daemon starts do not inherit them.
    pub fn open() -> Result<Self, PtyError> {
        let OpenptyResult { master, slave } = openpty(None::<&Winsize>, None::<&Termios>)
            .map_err(|errno| PtyError::Open { errno })?;

        let configure = |step| move |errno| PtyError::Configure { step, errno };
        let mut termios = tcgetattr(&slave).map_err(configure("tcgetattr"))?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios).map_err(configure("tcsetattr"))?;
        for fd in [&master, &slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(configure("FD_CLOEXEC"))?;
        }
        let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(configure("F_GETFL"))?;
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        fcntl(&master, FcntlArg::F_SETFL(flags)).map_err(configure("O_NONBLOCK"))?;

        let slave_path = nix::unistd::ttyname(&slave).map_err(|errno| PtyError::Name { errno })?;
        Ok(Self {
            master,
            slave,
            slave_path,
            link: None,
        })
    }

    /// The slave device to open as a serial port, such as `/dev/pts/7`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The symbolic link made by [`PtyPair::link`], if any.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_ref().map(|link| link.path.as_path())
    }

    /// Makes `path` a symbolic link to the slave device, so a config can name a stable path
    /// (`/tmp/croupier/wheel`) instead of a `/dev/pts/N` that changes on every start.
    ///
    /// Missing parent directories are created. An existing symbolic link at `path` (say, left
    /// by a simulator that crashed) is replaced atomically; anything else there is refused with
    /// [`PtyError::LinkOccupied`]. The link is removed when the pair (or its [`PtyMaster`]) is
    /// dropped, unless something else has replaced it by then. Linking again replaces the
    /// previous link.
    pub fn link(&mut self, path: impl AsRef<Path>) -> Result<&Path, PtyError> {
        self.link = None;
        let link = Link::create(path.as_ref(), &self.slave_path)?;
        Ok(self.link.insert(link).path.as_path())
    }

    /// Turns the pair into its async master end. The slave descriptor and the link move with it
    /// and live as long as the returned [`PtyMaster`]. Must be called inside a Tokio runtime.
    pub fn into_master(self) -> Result<PtyMaster, PtyError> {
        let register = |cause| PtyError::Register { cause };
        // Without a runtime Tokio would panic; say what is wrong instead.
        tokio::runtime::Handle::try_current()
            .map_err(|err| register(io::Error::other(err.to_string())))?;
        let reader = self.master.try_clone().map_err(register)?;
        let tx = pipe::Sender::from_owned_fd_unchecked(self.master).map_err(register)?;
        let rx = pipe::Receiver::from_owned_fd_unchecked(reader).map_err(register)?;
        Ok(PtyMaster {
            tx,
            rx,
            slave: self.slave,
            slave_path: self.slave_path,
            link: self.link,
        })
    }
}

/// The master end of a [`PtyPair`] as a Tokio [`AsyncRead`] + [`AsyncWrite`].
///
/// Writes go to whoever has the slave device open; reads return what they write back. Writes
/// never fail just because no one has the slave open, but once the kernel's queue is full they
/// wait (the writer should bound them with a timeout, then [`PtyMaster::discard_unread`]).
pub struct PtyMaster {
    // Two descriptors of the one master file description (non-blocking), registered with
    // Tokio's reactor through its safe pipe wrappers: the kernel treats a PTY master like a
    // pipe end for readiness, and no `unsafe` is needed on our side.
    tx: pipe::Sender,
    rx: pipe::Receiver,
    slave: OwnedFd,
    slave_path: PathBuf,
    link: Option<Link>,
}

impl fmt::Debug for PtyMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyMaster")
            .field("slave_path", &self.slave_path)
            .field("link", &self.link_path())
            .finish_non_exhaustive()
    }
}

impl PtyMaster {
    /// The slave device to open as a serial port, such as `/dev/pts/7`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The symbolic link to the slave device, if one was made.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_ref().map(|link| link.path.as_path())
    }

    /// Throws away every byte written to the master that no reader has taken yet (`tcflush`
    /// of the slave's input queue), as a real serial line loses bytes nobody listens to. Use it
    /// when a write has waited too long: the queue is full because nobody is reading.
    pub fn discard_unread(&self) -> Result<(), PtyError> {
        tcflush(self.slave.as_fd(), FlushArg::TCIFLUSH).map_err(|errno| PtyError::Flush {
            path: self.slave_path.clone(),
            errno,
        })
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().rx).poll_read(cx, buf)
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tx).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the kernel; there is no user-space buffer to flush.
        Pin::new(&mut self.get_mut().tx).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tx).poll_shutdown(cx)
    }
}

/// A symbolic link to a slave device, removed on drop if it still points there.
#[derive(Debug)]
struct Link {
    path: PathBuf,
    target: PathBuf,
}

impl Link {
    fn create(path: &Path, target: &Path) -> Result<Self, PtyError> {
        let fail = |cause: io::Error| PtyError::Link {
            path: path.to_owned(),
            target: target.to_owned(),
            cause,
        };
        let Some(name) = path.file_name() else {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the link path must end in a file name",
            )));
        };
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            Ok(_) => {
                return Err(PtyError::LinkOccupied {
                    path: path.to_owned(),
                })
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(fail(err)),
        }
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(fail)?;
        }

        // Create the link under a unique temporary name, then rename it over `path`: a reader
        // never sees the path missing or half made, and a stale link is replaced in one step.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".croupier-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.map_or_else(|| PathBuf::from(&tmp_name), |dir| dir.join(&tmp_name));
        std::os::unix::fs::symlink(target, &tmp).map_err(fail)?;
        if let Err(err) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(fail(err));
        }
        Ok(Self {
            path: path.to_owned(),
            target: target.to_owned(),
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if fs::read_link(&self.path).is_ok_and(|now| now == self.target) {
            if let Err(err) = fs::remove_file(&self.path) {
                tracing::warn!(link = %self.path.display(), error = %err, "could not remove the simulator's symbolic link; remove it by hand");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_a_raw_terminal_with_a_device_path() {
        let pair = PtyPair::open().expect("openpty");
        assert!(
            pair.slave_path().starts_with("/dev/pts"),
            "{:?}",
            pair.slave_path()
        );
        assert!(pair.slave_path().exists());
        let termios = tcgetattr(&pair.slave).expect("tcgetattr");
        let mut raw = termios.clone();
        cfmakeraw(&mut raw);
        assert_eq!(termios.local_flags, raw.local_flags);
        assert_eq!(termios.input_flags, raw.input_flags);
        assert_eq!(termios.output_flags, raw.output_flags);
    }

    #[test]
    fn link_replaces_stale_symlinks_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("wheel");
        fs::create_dir_all(dir.path().join("nested")).expect("mkdir");
        std::os::unix::fs::symlink("/dev/pts/does-not-exist", &path).expect("stale link");

        let mut pair = PtyPair::open().expect("openpty");
        let made = pair.link(&path).expect("link").to_owned();
        assert_eq!(made, path);
        assert_eq!(fs::read_link(&path).expect("read_link"), pair.slave_path());
        drop(pair);
        assert!(
            fs::symlink_metadata(&path).is_err(),
            "link should be removed on drop"
        );
        // No temporary names are left behind.
        let left: Vec<_> = fs::read_dir(dir.path().join("nested"))
            .expect("ls")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn link_creates_missing_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a").join("b").join("shoe");
        let mut pair = PtyPair::open().expect("openpty");
        pair.link(&path).expect("link");
        assert_eq!(pair.link_path(), Some(path.as_path()));
        assert_eq!(fs::read_link(&path).expect("read_link"), pair.slave_path());
    }

    #[test]
    fn link_refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wheel");
        fs::write(&path, b"precious").expect("write");
        let mut pair = PtyPair::open().expect("openpty");
        let err = pair.link(&path).expect_err("must refuse");
        assert!(matches!(err, PtyError::LinkOccupied { .. }), "{err}");
        assert!(err.to_string().contains("not a symbolic link"));
        drop(pair);
        assert_eq!(fs::read(&path).expect("read"), b"precious");
    }

    #[test]
    fn drop_leaves_a_link_that_was_replaced_by_someone_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rfid");
        let mut first = PtyPair::open().expect("openpty");
        first.link(&path).expect("link");
        let mut second = PtyPair::open().expect("openpty");
        second.link(&path).expect("relink");
        drop(first);
        assert_eq!(
            fs::read_link(&path).expect("read_link"),
            second.slave_path()
        );
    }
}
