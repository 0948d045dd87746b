"""Plots: plot_paired_gaps draws per-seed differences and their mean."""
import matplotlib.image as mpimg

from mmchansearch.visualization import plot_paired_gaps


def test_paired_gaps_plot_is_a_png(tmp_path):
    path = tmp_path / 'gaps.png'
    plot_paired_gaps({'final - original': [0.3, -0.4, 0.3],
                      'one seed': [1.0]}, str(path), 'title\nsecond line')
    image = mpimg.imread(str(path))
    assert image.shape[0] > 100 and image.shape[1] > 100
    # nothing but the finished file in the directory (atomic write)
    assert [p.name for p in tmp_path.iterdir()] == ['gaps.png']
