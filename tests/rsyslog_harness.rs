//! The rsyslog harness itself, with plain sockets (no siem-agent): what a
//! test sends is what the harness reports.

mod util;

use std::io::Write;
use std::time::Duration;
use util::rsyslog::Rsyslog;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn udp_tcp_and_unix_messages_are_received_and_parsed() {
    let rs = Rsyslog::builder().udp().tcp().unix_socket().start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 2026-11-23T01:02:03Z host-a app-a 42 MID-A - hello|tab\there",
        rs.udp_addr(),
    )
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(rs.tcp_addr()).unwrap();
    tcp.write_all(b"<14>1 2026-11-23T01:02:03Z host-b app-b 1 MID-B - first\n<14>1 2026-11-23T01:02:03Z host-b app-b 1 MID-B - second\n")
        .unwrap();
    let framed = "<14>1 2026-11-23T01:02:03Z host-c app-c 1 MID-C - counted\nwith LF";
    tcp.write_all(format!("{} {framed}", framed.len()).as_bytes())
        .unwrap();
    drop(tcp);
    let local = std::os::unix::net::UnixDatagram::unbound().unwrap();
    local
        .send_to(
            b"<14>Nov 23 01:56:00 tag-d[42]: local hello",
            rs.unix_socket_path(),
        )
        .unwrap();

    let mut got = rs.wait_for(5, WAIT);
    got.sort_by(|a, b| a.msg.cmp(&b.msg));
    let find = |needle: &str| {
        got.iter()
            .find(|m| m.msg.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {got:?}"))
    };
    let m = find("hello|tab");
    assert_eq!(
        (m.hostname.as_str(), m.app_name.as_str(), m.msgid.as_str()),
        ("host-a", "app-a", "MID-A")
    );
    assert_eq!(m.msg, "hello|tab\there");
    assert_eq!(find("first").app_name, "app-b");
    assert_eq!(find("second").msgid, "MID-B");
    assert_eq!(find("counted").msg, "counted\nwith LF");
    let d = find("local hello");
    assert_eq!(d.app_name, "tag-d");
    assert_eq!(d.procid, "42");
}

#[test]
fn restart_keeps_the_ports_and_what_was_received() {
    let mut rs = Rsyslog::builder().udp().start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<14>1 - h a - - - before", rs.udp_addr())
        .unwrap();
    rs.wait_for(1, WAIT);
    let addr = rs.udp_addr();
    rs.restart();
    assert_eq!(rs.udp_addr(), addr);
    udp.send_to(b"<14>1 - h a - - - after", rs.udp_addr())
        .unwrap();
    let got = rs.wait_for(2, WAIT);
    assert_eq!(
        got.iter().map(|m| m.msg.as_str()).collect::<Vec<_>>(),
        ["before", "after"]
    );
}
