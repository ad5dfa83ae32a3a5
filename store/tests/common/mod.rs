//! Inputs and expected CIDs shared by the store tests: golden vectors
//! checked against Kubo, js-ipfs and two other implementations.
#![allow(dead_code)]

use sha2::{Digest, Sha256};

/// `pattern(n)`: byte i = (i*7 + 13) mod 251.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + 13) % 251) as u8).collect()
}

/// `sha256-chain`: h = b"seed"; repeat h = sha256(h) and append h until the file has `n` bytes.
pub fn sha256_chain(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut h: Vec<u8> = b"seed".to_vec();
    while out.len() < n {
        h = Sha256::digest(&h).to_vec();
        let take = (n - out.len()).min(h.len());
        out.extend_from_slice(&h[..take]);
    }
    out
}

pub const MIB: usize = 1024 * 1024;
pub const CHAIN_BYTES: usize = 52_428_800;

/// One row of the golden table.
pub struct Golden {
    pub name: &'static str,
    pub bytes: fn() -> Vec<u8>,
    pub chunk_size: usize,
    pub v0: Option<&'static str>,
    pub v1: &'static str,
}

pub const GOLDEN: &[Golden] = &[
    Golden {
        name: "empty",
        bytes: || Vec::new(),
        chunk_size: 262_144,
        v0: Some("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        v1: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    },
    Golden {
        name: "0123456789",
        bytes: || b"0123456789".to_vec(),
        chunk_size: 262_144,
        v0: Some("QmdwoTaJBH7iW2cvDs94iNZBVnJwa12rjNAZ9G9XoHgbij"),
        v1: "bafkreiee3cmhp4guaqppw27zdilpajepf7kxhzvpaxaz7fv63opyql3yqi",
    },
    Golden {
        name: "pattern(262144)",
        bytes: || pattern(262_144),
        chunk_size: 262_144,
        v0: Some("QmYRPZxR9MUFw1inxYKkhbS1hL34MUM8tR1CJu9bAnrmLJ"),
        v1: "bafkreicikemdp26f5bgmp7zu243zjnm7ebnp6c5x5mbutsyamvakm75g2e",
    },
    Golden {
        name: "pattern(262145)",
        bytes: || pattern(262_145),
        chunk_size: 262_144,
        v0: Some("QmeHbVqqQbjAFE53GJpNKxLG74Epy7BZAvBtSNZiKy1h3N"),
        v1: "bafybeicr2cjiswjzmkcyfcg25ykzp5eltdbafbb4j2dgb36ddpptyllk6m",
    },
    Golden {
        name: "pattern(3145728)",
        bytes: || pattern(3 * MIB),
        chunk_size: 262_144,
        v0: Some("QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe"),
        v1: "bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma",
    },
    Golden {
        name: "sha256-chain",
        bytes: || sha256_chain(CHAIN_BYTES),
        chunk_size: 262_144,
        v0: Some("QmUHZt6BFjtpxoMa5HQ158LPSVDfPru8xzXh1q6bnoD1yo"),
        v1: "bafybeibln6cmecfgcspo32oyy7bao3omqjv7tiq7bfy6q57cc7ikjqw7wi",
    },
    Golden {
        name: "pattern(3145728), 1 MiB chunks",
        bytes: || pattern(3 * MIB),
        chunk_size: MIB,
        v0: None,
        v1: "bafybeihvnt3t4kc66lj2n4iy6pw23kmb7cxqibwu454jslwkyopoqkx2hu",
    },
];
