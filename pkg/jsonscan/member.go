package jsonscan

// memberWindow is how many bytes from a member's opening quote Member classifies at once:
// three vectors. Most members of a stats report fit ("packetsLost":0, "kind":"video"); the
// others, and the ones near the end of the data, are left to the caller.
const memberWindow = 48
