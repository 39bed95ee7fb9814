//! Integration tests: run the real `shmframe` executable as separate processes talking through
//! real shared memory.

mod cli;
mod hostile;
mod socket_cli;
mod util;
