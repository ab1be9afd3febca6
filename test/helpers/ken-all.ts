/**
 * KEN_ALL.CSV test data (issue 12 §4): lines in the layout of Japan Post's file, written for the
 * tests, and a Shift_JIS encoder for them, built by inverting node's WHATWG "shift_jis" decoder
 * over every single- and double-byte code (node ships a decoder only).
 */
const decoder = new TextDecoder("shift_jis", { fatal: true });
let table: Map<string, number[]> | undefined;

function reverseTable(): Map<string, number[]> {
  if (table) return table;
  table = new Map();
  const add = (bytes: number[]) => {
    let c: string;
    try {
      c = decoder.decode(new Uint8Array(bytes));
    } catch {
      return;
    }
    if ([...c].length === 1 && !table!.has(c)) table!.set(c, bytes);
  };
  for (let b = 0; b < 0x80; b++) add([b]);
  for (let b = 0xa1; b <= 0xdf; b++) add([b]);
  for (const lead of [...Array(0x1f).keys()].map((i) => 0x81 + i).concat([...Array(0x1d).keys()].map((i) => 0xe0 + i))) {
    for (let trail = 0x40; trail <= 0xfc; trail++) if (trail !== 0x7f) add([lead, trail]);
  }
  return table;
}

/** `text` in Shift_JIS; throws on a character Shift_JIS cannot encode. */
export function encodeShiftJis(text: string): Uint8Array {
  const t = reverseTable();
  const out: number[] = [];
  for (const c of text) {
    const b = t.get(c);
    if (!b) throw new Error(`not encodable in Shift_JIS: U+${c.codePointAt(0)!.toString(16)}`);
    out.push(...b);
  }
  return new Uint8Array(out);
}

/** Lines in the layout of Japan Post's KEN_ALL.CSV (values written for this test). */
export const KEN_ALL_SAMPLE = [
  `13101,"100  ","1000000","ﾄｳｷｮｳﾄ","ﾁﾖﾀﾞｸ","ｲｶﾆｹｲｻｲｶﾞﾅｲﾊﾞｱｲ","東京都","千代田区","以下に掲載がない場合",0,0,0,0,0,0`,
  `13101,"100  ","1000005","ﾄｳｷｮｳﾄ","ﾁﾖﾀﾞｸ","ﾏﾙﾉｳﾁ(ﾂｷﾞﾉﾋﾞﾙｦﾉｿﾞｸ)","東京都","千代田区","丸の内（次のビルを除く）",0,0,1,0,0,0`,
  `01101,"060  ","0600042","ﾎｯｶｲﾄﾞｳ","ｻｯﾎﾟﾛｼﾁｭｳｵｳｸ","ｵｵﾄﾞｵﾘﾆｼ(1-19ﾁｮｳﾒ)","北海道","札幌市中央区","大通西（１～１９丁目）",1,0,1,0,0,0`,
  `26104,"604  ","6048000","ｷｮｳﾄﾌ","ｷｮｳﾄｼﾅｶｷﾞｮｳｸ","ﾃｽﾄﾁｮｳ(ﾃｽﾄﾄﾞｵﾘ","京都府","京都市中京区","テスト町（テスト通",0,0,0,0,0,0`,
  `26104,"604  ","6048000","ｷｮｳﾄﾌ","ｷｮｳﾄｼﾅｶｷﾞｮｳｸ","ﾆｼｲﾙ)","京都府","京都市中京区","西入）",0,0,0,0,0,0`,
  `13113,"150  ","1500002","ﾄｳｷｮｳﾄ","ｼﾌﾞﾔｸ","ｼﾌﾞﾔ","東京都","渋谷区","渋谷",0,0,1,0,0,0`,
  `13113,"150  ","1500002","ﾄｳｷｮｳﾄ","ｼﾌﾞﾔｸ","ｼﾌﾞﾔｴｷﾏｴ","東京都","渋谷区","渋谷駅前",0,0,1,0,0,0`,
  `20323,"389  ","3890100","ﾅｶﾞﾉｹﾝ","ｷﾀｻｸｸﾞﾝｶﾙｲｻﾞﾜﾏﾁ","ｶﾙｲｻﾞﾜﾏﾁｲﾁｴﾝ","長野県","北佐久郡軽井沢町","軽井沢町一円",0,0,0,0,0,0`,
].join("\r\n") + "\r\n";

