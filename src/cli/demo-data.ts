/** Sample subscribers for `hpki demo` (fictional people and facilities). */
export const DEMO_SUBSCRIBERS = [
  {
    hcRole: "Medical Doctor",
    subscriberId: "DEMO000001",
    name: { latin: "Taro Yamada", kanji: "山田　太郎" },
    organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
  },
  {
    hcRole: "Pharmacist",
    subscriberId: "DEMO000002",
    name: { latin: "Hanako Sato", kanji: "佐藤　花子" },
    organization: { latin: "Sakura Pharmacy", kanji: "さくら薬局" },
  },
  {
    hcRole: "Director of Hospital",
    subscriberId: "DEMO000003",
    name: { latin: "Ichiro Suzuki", kanji: "鈴木　一郎" },
    organization: { latin: "Minato Medical Center", kanji: "みなと医療センター" },
  },
] as const;

/**
 * An organisation (server) certificate requested with a CSR. The CN is the system's name; the host
 * name travels in the CSR's subjectAltName and lands in SAN dNSName, where TLS clients look.
 */
export const DEMO_ORGANIZATION = {
  subscriberId: "DEMOORG0001",
  name: { latin: "Tokyo Chuo Hospital EHR" },
  organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
} as const;

/** The demo organisation's server host name (SAN dNSName of its certificate). */
export const DEMO_ORGANIZATION_HOST = "ehr.tokyo-chuo-hospital.example";
