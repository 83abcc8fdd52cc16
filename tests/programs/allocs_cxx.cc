// allocs_cxx.cc — every C++ operator new and delete once, with known sizes,
// for the alloc monitor's tests (the counts are in tests/alloc.sh).
#include <cstddef>
#include <new>

struct alignas(64) Wide {
    char bytes[128];
};

// Freed by an exit-time destructor, which runs before pikoc's run ends.
static struct Holder {
    char *block = nullptr;
    ~Holder() { delete[] block; }
} holder;

int main()
{
    int *one = new int(7);
    delete one; // sized delete (C++14): operator delete(void*, size_t)
    char *array = new char[40];
    delete[] array;
    char *maybe = new (std::nothrow) char[24];
    delete[] maybe;
    long *single = new (std::nothrow) long(3);
    delete single;
    Wide *wide = new Wide;
    delete wide; // aligned, sized
    Wide *wides = new Wide[2];
    delete[] wides;
    void *raw = ::operator new(100);
    ::operator delete(raw);
    void *aligned = ::operator new(256, std::align_val_t(128));
    ::operator delete(aligned, std::align_val_t(128));
    void *quiet = ::operator new(8, std::align_val_t(32), std::nothrow);
    ::operator delete(quiet, std::align_val_t(32), std::nothrow);
    void *arr = ::operator new[](16, std::nothrow);
    ::operator delete[](arr, std::nothrow);
    void *plain = ::operator new(12);
    ::operator delete(plain, std::nothrow);
    void *sized = ::operator new[](36);
    ::operator delete[](sized, 36);
    void *both = ::operator new[](64, std::align_val_t(64));
    ::operator delete[](both, 64, std::align_val_t(64));
    void *last = ::operator new[](32, std::align_val_t(64), std::nothrow);
    ::operator delete[](last, std::align_val_t(64), std::nothrow);
    try {
        char *huge = new char[std::size_t(1) << 62];
        delete[] huge;
        return 1;
    } catch (const std::bad_alloc &) {
    }
    new int[5]; // leaked: 20 bytes
    holder.block = new char[48];
    return 0;
}
