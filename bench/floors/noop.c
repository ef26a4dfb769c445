/* The no-op program of the floor benchmarks: built as a static Linux binary (gcc -static) for the runc floor and
 * as a wasm module (clang --target=wasm32-wasi) for ours, so both floors run the same nothing. */
int main(void) { return 0; }
