//! Lists audio devices: `cargo run -p salon-audio --example devices`.

use salon_audio::backend::device::{Direction, list_devices};

fn main() {
    for dir in [Direction::Input, Direction::Output] {
        println!("{dir:?}:");
        match list_devices(dir) {
            Ok(list) => {
                for d in list {
                    let mark = if d.is_default { " (default)" } else { "" };
                    println!("  {}{mark}", d.name);
                }
            }
            Err(e) => println!("  error: {e}"),
        }
    }
}
