//! Published test vectors for both signature schemes.
//!
//! Receivers check their own verifier against these. The expected values were computed
//! independently (with a general-purpose HMAC implementation, not this crate) and the
//! tests below assert that [`crate::sign`] reproduces them byte for byte and that both
//! verifiers accept them. The second vector is the example of the Standard Webhooks
//! specification, so it also pins this crate to that specification.
//!
//! Vector 1
//!
//! ```text
//! secret            whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
//!                   (base64 part = bytes 0x00 0x01 … 0x1f)
//! webhook id        wh_01jdq4v8k2x9m3n5p7r9t1v3w5
//! message id        evt_01jdq4v8k2x9m3n5p7r9t1v3w6
//! timestamp         1795946400   (2026-11-29T10:00:00Z)
//! body (UTF-8, no trailing newline)
//! {"id":"evt_01jdq4v8k2x9m3n5p7r9t1v3w6","event":"sms.inbound","delivered_at":"2026-11-29T10:00:00.000Z","mid":"mid_01jdq4t0000000000000000000","sequence":1,"data":{"from":"+4915112345678","text":"Hello é"}}
//!
//! X-Ami-Signature   sha256=08b6c364a36d28822f85d852761e890ff6e3ef2206ce1a1a479cb4db62d08692
//! X-Ami-Timestamp   1795946400
//! X-Ami-Webhook-Id  wh_01jdq4v8k2x9m3n5p7r9t1v3w5
//! webhook-id        evt_01jdq4v8k2x9m3n5p7r9t1v3w6
//! webhook-timestamp 1795946400
//! webhook-signature v1,803doAVnKUKIdcbPsSAx5EzhxjtcZh+DQunhRj2aNl4=
//! ```
//!
//! Vector 2 (the Standard Webhooks specification's example)
//!
//! ```text
//! secret            whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
//! webhook id        wh_test
//! message id        msg_p5jXN8AQM9LWM0D4loKWxJek
//! timestamp         1614265330
//! body              {"test": 2432232314}
//!
//! X-Ami-Signature   sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964
//! X-Ami-Timestamp   1614265330
//! X-Ami-Webhook-Id  wh_test
//! webhook-id        msg_p5jXN8AQM9LWM0D4loKWxJek
//! webhook-timestamp 1614265330
//! webhook-signature v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
//! ```

/// One vector: inputs and the headers they must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestVector {
    /// `whsec_…` secret.
    pub secret: &'static str,
    /// Endpoint id (`X-Ami-Webhook-Id`).
    pub webhook_id: &'static str,
    /// Message id (`webhook-id`).
    pub message_id: &'static str,
    /// Unix seconds.
    pub timestamp: u64,
    /// Exact body bytes.
    pub body: &'static [u8],
    /// Expected `X-Ami-Signature`.
    pub ami_signature: &'static str,
    /// Expected `webhook-signature`.
    pub webhook_signature: &'static str,
}

/// The published vectors (see the module documentation for the readable form).
pub const TEST_VECTORS: [TestVector; 2] = [
    TestVector {
        secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        webhook_id: "wh_01jdq4v8k2x9m3n5p7r9t1v3w5",
        message_id: "evt_01jdq4v8k2x9m3n5p7r9t1v3w6",
        timestamp: 1_795_946_400,
        body: "{\"id\":\"evt_01jdq4v8k2x9m3n5p7r9t1v3w6\",\"event\":\"sms.inbound\",\"delivered_at\":\"2026-11-29T10:00:00.000Z\",\"mid\":\"mid_01jdq4t0000000000000000000\",\"sequence\":1,\"data\":{\"from\":\"+4915112345678\",\"text\":\"Hello \u{e9}\"}}".as_bytes(),
        ami_signature: "sha256=08b6c364a36d28822f85d852761e890ff6e3ef2206ce1a1a479cb4db62d08692",
        webhook_signature: "v1,803doAVnKUKIdcbPsSAx5EzhxjtcZh+DQunhRj2aNl4=",
    },
    TestVector {
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        webhook_id: "wh_test",
        message_id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp: 1_614_265_330,
        body: b"{\"test\": 2432232314}",
        ami_signature: "sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964",
        webhook_signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::sign;
    use crate::verify::{verify_compatible, verify_standard};

    #[test]
    fn sign_reproduces_the_vectors() {
        for v in TEST_VECTORS {
            let h = sign(v.secret, v.webhook_id, v.message_id, v.timestamp, v.body).unwrap();
            let ts = v.timestamp.to_string();
            assert_eq!(h.ami_signature, v.ami_signature);
            assert_eq!(h.ami_timestamp, ts);
            assert_eq!(h.ami_webhook_id, v.webhook_id);
            assert_eq!(h.webhook_id, v.message_id);
            assert_eq!(h.webhook_timestamp, ts);
            assert_eq!(h.webhook_signature, v.webhook_signature);
        }
    }

    #[test]
    fn verifiers_accept_the_vectors_and_reject_a_flipped_bit() {
        for v in TEST_VECTORS {
            let h = sign(v.secret, v.webhook_id, v.message_id, v.timestamp, v.body)
                .unwrap()
                .to_header_map()
                .unwrap();
            assert_eq!(verify_compatible(v.secret, &h, v.body, v.timestamp), Ok(()));
            assert_eq!(verify_standard(v.secret, &h, v.body, v.timestamp), Ok(()));
            let mut tampered = v.body.to_vec();
            tampered[1] ^= 1;
            assert!(verify_compatible(v.secret, &h, &tampered, v.timestamp).is_err());
            assert!(verify_standard(v.secret, &h, &tampered, v.timestamp).is_err());
        }
    }

    /// Prints the vectors in the form used by the documentation:
    /// `cargo test -p ami-webhooks print_vectors -- --nocapture`.
    #[test]
    fn print_vectors() {
        for (i, v) in TEST_VECTORS.iter().enumerate() {
            let h = sign(v.secret, v.webhook_id, v.message_id, v.timestamp, v.body).unwrap();
            println!("Vector {}", i + 1);
            println!("secret            {}", v.secret);
            println!("webhook id        {}", v.webhook_id);
            println!("message id        {}", v.message_id);
            println!("timestamp         {}", v.timestamp);
            println!("body              {}", String::from_utf8_lossy(v.body));
            for (name, value) in h.pairs() {
                println!("{name:<17} {value}");
            }
            println!();
        }
    }
}
