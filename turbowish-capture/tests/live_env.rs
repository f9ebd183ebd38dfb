//! `TURBOWISH_LIVE=1` turns the live endpoint on from the environment:
//! `install_signal_handler` serves it in `$TURBOWISH_DIR`. (A process of
//! its own: the environment and the trigger are process-wide.)

use std::os::unix::net::UnixStream;

use turbowish_snapshot::live::ServerFrame;

#[global_allocator]
static ALLOC: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

#[test]
fn the_environment_turns_the_live_view_on() {
    let dir = std::env::temp_dir().join(format!("turbowish-live-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The only test in this process: nothing reads the environment
    // concurrently.
    std::env::set_var("TURBOWISH_DIR", &dir);
    std::env::set_var("TURBOWISH_LIVE", "0");
    let trigger = turbowish_capture::install_signal_handler().unwrap();
    assert_eq!(trigger.live_socket(), None, "TURBOWISH_LIVE=0 is off");

    std::env::set_var("TURBOWISH_LIVE", "1");
    let trigger = turbowish_capture::install_signal_handler().unwrap();
    let socket = dir.join(turbowish_capture::live_socket_name(std::process::id()));
    assert_eq!(trigger.live_socket(), Some(socket.as_path()));
    let hello = ServerFrame::read_hello(&mut UnixStream::connect(&socket).unwrap()).unwrap();
    assert_eq!(hello.pid, std::process::id());
}
