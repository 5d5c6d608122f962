//! Codec micro-benchmarks (no IO):
//! * decode of a GetResponse with 50 Counter64 varbinds (ifHCInOctets.1..50),
//!   reported per varbind;
//! * encode of a GETBULK request, with the allocations it makes.
//!
//! Run: `cargo bench --bench codec`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput};
use ironpoll::snmp::ber::Writer;
use ironpoll::snmp::pdu::{self, PduHeader, PduType, Version};
use ironpoll::snmp::{Oid, Value, VarBind, oid};

/// Counts allocations, to show what encoding a request costs the heap.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn response_50_counter64() -> Vec<u8> {
    let varbinds: Vec<VarBind> = (1..=50u32)
        .map(|i| {
            VarBind::new(
                oid("1.3.6.1.2.1.31.1.1.1.6").child(i),
                Value::Counter64(123_456_789_012 + i as u64 * 1_000_003),
            )
        })
        .collect();
    let mut w = Writer::with_capacity(2048);
    let header = PduHeader {
        pdu_type: PduType::Response,
        request_id: 0x1234_5678,
        error_status: 0,
        error_index: 0,
    };
    pdu::encode_community_message(&mut w, Version::V2c, b"public", &header, |w| {
        for vb in varbinds.iter().rev() {
            vb.encode(w);
        }
    });
    w.into_vec()
}

fn encode_getbulk(w: &mut Writer, root: &[Oid]) {
    w.clear();
    pdu::encode_community_message(
        w,
        Version::V2c,
        b"public",
        &PduHeader::get_bulk(0x1234_5678, 0, 25),
        |w| pdu::write_request_varbinds(w, root),
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let response = response_50_counter64();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(50));
    group.bench_function("getresponse_50_counter64", |b| {
        b.iter(|| {
            let msg = pdu::decode_message(black_box(&response)).unwrap();
            black_box(msg);
        })
    });
    group.finish();

    let root = [oid("1.3.6.1.2.1.31.1.1.1.6")];
    let mut w = Writer::with_capacity(256);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("getbulk_reused_buffer", |b| {
        b.iter(|| encode_getbulk(&mut w, black_box(&root)))
    });
    group.bench_function("getbulk_owned_packet", |b| {
        b.iter(|| {
            let mut w = Writer::with_capacity(64);
            encode_getbulk(&mut w, black_box(&root));
            black_box(w.into_vec())
        })
    });
    group.finish();
    c.final_summary();

    // Allocations per operation, counted over many operations.
    let n = 10_000u64;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        encode_getbulk(&mut w, black_box(&root));
    }
    let reused = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        let mut w = Writer::with_capacity(64);
        encode_getbulk(&mut w, black_box(&root));
        black_box(w.into_vec());
    }
    let owned = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        black_box(pdu::decode_message(black_box(&response)).unwrap());
    }
    let decoded = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "allocations per GETBULK encode, reused buffer: {:.2}",
        reused as f64 / n as f64
    );
    println!(
        "allocations per GETBULK encode, owned packet: {:.2}",
        owned as f64 / n as f64
    );
    println!(
        "allocations per 50-varbind decode: {:.2} ({:.2} per varbind)",
        decoded as f64 / n as f64,
        decoded as f64 / n as f64 / 50.0
    );
}
