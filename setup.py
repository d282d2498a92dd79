"""Install pcca_plugin: ``pip install -e .[tests,deploy]`` (``make setup`` does it)."""

import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    """Read ``__version__`` from ``pcca_plugin/version.py`` without importing."""
    namespace: dict = {}
    with open(osp.join(HERE, 'pcca_plugin', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), namespace)
    return namespace['__version__']


def read_readme() -> str:
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


setup(
    name='pcca_plugin',
    version=read_version(),
    description='Person-Context Cross Attention (PCCA) spatio-temporal action '
    'detection for the OpenMMLab video stack',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    install_requires=[
        # The OpenMMLab pins that work together (see README, "Install").
        # mmcv is built from source with ops by `make setup`; it is listed
        # here with a range only so that pip does not try to rebuild it.
        'mmengine==0.10.7',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet==3.3.0',
        'mmaction2==1.2.0',
        'openmim',
        # mmaction2 1.2.0 imports these without declaring them.
        'importlib_metadata',
        'decord>=0.6.0',
        'av',
        'numpy',
        'scipy',
        'matplotlib',
        'opencv-python',
        'rich',
        'setuptools>=77,<81',
    ],
    extras_require={
        'tests': [
            'pytest>=7',
            'pytest-timeout',
            'hypothesis',
            'ruff==0.17.6',
            # mmengine's TensorboardVisBackend (torch.utils.tensorboard); docs/inference.md.
            'tensorboard',
            # The reference SlowFast of tests/test_models/test_weight_conversion.py;
            # it and its dependencies (fvcore, iopath) need no torch of their own.
            'pytorchvideo==0.1.5',
        ],
        # The ONNX export, onnxruntime inference and benchmark (docs/deployment.md):
        # torch.onnx's dynamo exporter needs onnxscript.
        'deploy': [
            'onnx',
            'onnxruntime',
            'onnxscript',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
