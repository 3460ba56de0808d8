-- tools/fuzz/known.lua -- TEMPORARY allow-list of the fuzzer's known findings.
return {}
