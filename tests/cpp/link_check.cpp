// The main of the link checks (tests/cpp/CMakeLists.txt): never run; that it links is the test.
int main() { return 0; }
