// Errors the user can act on: bad folders, bad labels, bad preprocessing settings, nothing decodable.
// The hosts show `message` as is, so every message says what was expected and what to do about it.
export class DataError extends Error {
  override readonly name = "DataError";
}
