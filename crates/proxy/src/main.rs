//! `slotway --config slotway.yaml [--listen ..] [--seeds ..] [--metrics-listen ..]`.

fn main() {
    eprintln!("slotway: the proxy is being assembled; nothing runs yet");
    std::process::exit(2);
}
