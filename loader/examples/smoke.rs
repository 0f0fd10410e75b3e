use ffb_loader::{Bridge, BridgeMode, Value};
fn main() {
    let fx = std::env::args().nth(1).unwrap();
    let t = std::time::Instant::now();
    let b = Bridge::builder(fx.clone())
        .bridge_mode(BridgeMode::Enabled)
        .declare("ffb_add_i64(i64, i64) -> i64")
        .declare("ffb_nop() -> void")
        .declare("ffb_greet() -> cstr")
        .declare("ffb_fill_out(out[8], usize) -> i32")
        .shim(
            std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .join("../ffb-shim"),
        )
        .load();
    println!("load {:?} {:?}", t.elapsed(), b.as_ref().err());
    let mut b = b.unwrap();
    let f = b.function("ffb_add_i64").unwrap();
    println!("{:?}", b.call(f, &[Value::I64(2), Value::I64(40)]));
    println!("{:?}", b.call_by_name("ffb_greet", &[]));
    println!("{:?}", b.call_by_name("ffb_fill_out", &[Value::Usize(8)]));
    let n = b.function("ffb_nop").unwrap();
    let t = std::time::Instant::now();
    for _ in 0..100000 {
        b.call(n, &[]).unwrap();
    }
    println!("nop {:?}/call", t.elapsed() / 100000);
}
