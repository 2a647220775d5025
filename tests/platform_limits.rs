//! What the operating system may refuse, reported as errors that say what to do: a `/dev/shm` too small
//! for the ring (the default in Docker is 64 MiB), and a segment whose permissions exclude the consumer;
//! and what a consumer refuses unless told to accept it: a segment other users may write, or one another
//! user owns.

use disruptor_mp::{
    attach_mmap_consumer, attach_shared_consumer, build_mmap_single_producer,
    build_shared_single_producer, AttachError, CreateError, MappedFile,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, unique_segment_name, ChildProcess, TestBackend,
};
use std::process::Command;
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const STALL: Duration = Duration::from_secs(30);

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "create-in-small-shm" => create_in_small_shm(),
        "attach-as-nobody" => attach_as_nobody(),
        "attach-other-owners-segment" => attach_other_owners_segment(),
        other => Err(format!("unknown role {other}")),
    });
}

/// Size of the private tmpfs the first test mounts on `/dev/shm`.
const SMALL_SHM: &str = "size=1m";

/// Runs in a private mount namespace whose `/dev/shm` holds 1 MiB: a 4 MiB ring must be refused at
/// creation with the sizes, leaving nothing behind, and a ring that fits must take writes to every slot
/// (with a sparse object it would die with SIGBUS instead).
fn create_in_small_shm() -> Result<String, String> {
    let error = build_shared_single_producer::<u64>("too-large", 1 << 19)
        .build_producer()
        .err()
        .ok_or("a 4 MiB ring was created in a 1 MiB /dev/shm")?;
    let CreateError::InsufficientSpace {
        needed, available, ..
    } = &error
    else {
        return Err(format!("expected InsufficientSpace, got: {error}"));
    };
    if *needed < 4 << 20 || available.is_none_or(|free| free > 1 << 20) {
        return Err(format!("implausible sizes in: {error}"));
    }
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .map_err(|e| e.to_string())?
        .collect();
    if !left.is_empty() {
        return Err(format!(
            "the refused create left {} objects behind",
            left.len()
        ));
    }
    let mut producer = build_shared_single_producer::<u64>("fits", 1 << 14)
        .build_producer()
        .map_err(|e| format!("a 128 KiB ring did not fit in 1 MiB: {e}"))?;
    for i in 0..producer.capacity() as u64 {
        producer.publish(i).map_err(|e| e.to_string())?;
    }
    Ok(error.to_string())
}

#[test]
fn a_ring_larger_than_the_free_shared_memory_is_refused_at_creation() {
    // A private tmpfs needs a mount namespace of our own, which needs root (or a user namespace).
    let probe = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            &format!("mount -t tmpfs -o {SMALL_SHM} tmpfs /dev/shm"),
        ])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "SKIPPED: cannot mount a private tmpfs on /dev/shm (unshare -m + mount need root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run unshare: {e}");
            return;
        }
    }
    let mount = format!("mount -t tmpfs -o {SMALL_SHM} tmpfs /dev/shm && exec \"$@\"");
    let child = ChildProcess::spawn_test_role_wrapped(
        &["unshare", "-m", "sh", "-c", &mount, "sh"],
        "create-in-small-shm",
        &[],
    )
    .unwrap();
    let message = child.expect_success(STALL).unwrap();
    assert!(message.contains("needs 4"), "{message}");
    assert!(message.contains("/dev/shm/too-large"), "{message}");
}

/// Attaches to the segment as user `nobody` when started as root (root bypasses file permissions), as
/// itself otherwise; reports the error.
fn attach_as_nobody() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    // SAFETY: plain system calls without pointers; this child process has no other threads that depend
    // on its credentials.
    unsafe {
        if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
            return Err("cannot drop root privileges".into());
        }
    }
    match attach_shared_consumer::<u64>(&name).build_consumer() {
        Ok(_) => Err("attached to a segment its mode forbids".into()),
        Err(error) => match error {
            AttachError::PermissionDenied { .. } => Ok(error.to_string()),
            other => Err(format!("expected PermissionDenied, got: {other}")),
        },
    }
}

#[test]
fn a_consumer_without_permission_is_told_the_mode_and_how_to_change_it() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Root's child drops to `nobody`, whom 0600 excludes; any other user is excluded by mode 0.
    let mode = if root { 0o600 } else { 0o000 };
    let name = unique_segment_name("mode");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .with_mode(mode)
        .build_producer()
        .unwrap();
    let child =
        ChildProcess::spawn_test_role("attach-as-nobody", &[(SEGMENT, name.clone())]).unwrap();
    let message = child.expect_success(STALL).unwrap();
    assert!(message.contains("with_mode"), "{message}");
    #[cfg(target_os = "linux")]
    assert!(message.contains(&format!("mode {mode:04o}")), "{message}");
}

/// Drops to `nobody` if root (the caller checked), then attaches to a segment root owns and everyone may
/// write: refused for its owner, then for its mode, then accepted with both allowances.
fn attach_other_owners_segment() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    // SAFETY: plain system calls without pointers; this child process has no other threads that depend
    // on its credentials.
    unsafe {
        if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
            return Err("cannot drop root privileges".into());
        }
    }
    match attach_shared_consumer::<u64>(&name).build_consumer() {
        Err(AttachError::OwnedByOtherUser {
            owner_uid: 0,
            process_uid: 65534,
            ..
        }) => {}
        other => return Err(format!("expected OwnedByOtherUser, got {other:?}")),
    }
    match attach_shared_consumer::<u64>(&name)
        .allow_other_owner()
        .build_consumer()
    {
        Err(AttachError::WritableByOthers { mode: 0o666, .. }) => {}
        other => return Err(format!("expected WritableByOthers, got {other:?}")),
    }
    attach_shared_consumer::<u64>(&name)
        .allow_other_owner()
        .allow_writable_by_others()
        .build_consumer()
        .map(|_| "attached once both were allowed".to_string())
        .map_err(|e| format!("refused with both allowances: {e}"))
}

/// Makes the shared-memory segment `name` readable and writable by everyone (the producer's `with_mode`
/// goes through the umask; this does not).
fn make_world_writable(name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn a_segment_others_may_write_is_refused_unless_the_consumer_allows_it() {
    let name = unique_segment_name("writable");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    make_world_writable(&name);
    match attach_shared_consumer::<u64>(&name).build_consumer() {
        Err(AttachError::WritableByOthers { mode: 0o666, .. }) => {}
        other => panic!("expected WritableByOthers, got {other:?}"),
    }
    attach_shared_consumer::<u64>(&name)
        .allow_writable_by_others()
        .build_consumer()
        .unwrap();
}

#[test]
fn a_ring_file_its_group_may_write_is_refused_unless_the_consumer_allows_it() {
    let ring = MappedFile::new_ring("group-writable");
    let _producer = build_mmap_single_producer::<u64>(ring.id(), 8)
        .with_mode(0o660)
        .build_producer()
        .unwrap();
    match attach_mmap_consumer::<u64>(ring.id()).build_consumer() {
        Err(AttachError::WritableByOthers { mode: 0o660, .. }) => {}
        other => panic!("expected WritableByOthers, got {other:?}"),
    }
    attach_mmap_consumer::<u64>(ring.id())
        .allow_writable_by_others()
        .build_consumer()
        .unwrap();
}

#[test]
fn a_segment_another_user_owns_is_refused_unless_the_consumer_allows_it() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: needs root, to attach as another user (nobody) to a segment root owns");
        return;
    }
    let name = unique_segment_name("owner");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    make_world_writable(&name); // so that nobody can open it at all
    let child =
        ChildProcess::spawn_test_role("attach-other-owners-segment", &[(SEGMENT, name.clone())])
            .unwrap();
    child.expect_success(STALL).unwrap();
}
