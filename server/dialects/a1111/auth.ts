// AUTOMATIC1111's --api-auth ("user:pass,user2:pass2"); the server's ApiKeys checks the pairs.

/** "user:pass,user2:pass2" → ["user:pass", "user2:pass2"]; throws on an entry without a colon. */
export function parseApiAuth(text: string): string[] {
  const pairs = text.split(',').map((pair) => pair.trim()).filter((pair) => pair !== '');
  const bad = pairs.find((pair) => !/^[^:]+:.+$/.test(pair));
  if (bad !== undefined || pairs.length === 0) {
    throw new TypeError(`Expected user:password[,user2:password2] for --api-auth but received ${JSON.stringify(text)}`);
  }
  return pairs;
}
